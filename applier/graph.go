package applier

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// step is one unit of work in the apply graph.
type step struct {
	id   string   // the plan address, e.g. "worker.chat[gpu1/0]"
	deps []string // ids that must succeed first
	run  func(ctx context.Context) error
}

// outcome is what happened to one step.
type outcome struct {
	id       string
	err      error  // nil when the step succeeded
	skipped  string // set when the step never ran: why
	duration time.Duration
}

// runGraph runs steps as a dependency graph with at most parallelism steps at
// once. A failed step skips everything that depends on it; independent
// branches go on. When stop is cancelled no new step starts, but steps in
// flight run to completion (they get a context that stop does not cancel) and
// are reported, so their results can be recorded. done is called once per
// step as soon as it ends (from the step's goroutine).
func runGraph(stop context.Context, steps []step, parallelism int, done func(outcome)) ([]outcome, error) {
	if parallelism < 1 {
		parallelism = 1
	}
	byID := map[string]*step{}
	for i := range steps {
		s := &steps[i]
		if _, dup := byID[s.id]; dup {
			return nil, fmt.Errorf("apply graph: step %s appears twice", s.id)
		}
		byID[s.id] = s
	}
	waiting := map[string]int{}         // unfinished dependencies per step
	dependents := map[string][]string{} // reverse edges
	for _, s := range steps {
		for _, d := range s.deps {
			if _, ok := byID[d]; !ok {
				continue // a dependency outside this plan is already satisfied
			}
			waiting[s.id]++
			dependents[d] = append(dependents[d], s.id)
		}
	}
	if cyc := findCycle(steps, byID); cyc != "" {
		return nil, fmt.Errorf("apply graph: dependency cycle through %s", cyc)
	}

	var (
		results  = map[string]outcome{}
		finished = make(chan outcome)
		running  int
		ready    []string
	)
	for _, s := range steps {
		if waiting[s.id] == 0 {
			ready = append(ready, s.id)
		}
	}
	sort.Strings(ready)
	work := context.WithoutCancel(stop)

	// skip marks id and everything downstream of it as not run.
	var skip func(id, why string)
	skip = func(id, why string) {
		if _, seen := results[id]; seen {
			return
		}
		o := outcome{id: id, skipped: why}
		results[id] = o
		if done != nil {
			done(o)
		}
		for _, d := range dependents[id] {
			skip(d, "skipped: "+id+" did not complete")
		}
	}

	for len(results) < len(steps) {
		// Start ready steps in order while there is room.
		for len(ready) > 0 && running < parallelism && stop.Err() == nil {
			id := ready[0]
			ready = ready[1:]
			running++
			go func(s *step) {
				start := time.Now()
				err := s.run(work)
				o := outcome{id: s.id, err: err, duration: time.Since(start)}
				if done != nil {
					done(o)
				}
				finished <- o
			}(byID[id])
		}
		if running == 0 {
			// Interrupted (or nothing left can run): everything else is skipped.
			why := "skipped: interrupted"
			for _, s := range steps {
				if _, seen := results[s.id]; !seen {
					skip(s.id, why)
				}
			}
			break
		}
		o := <-finished
		running--
		results[o.id] = o
		if o.err != nil {
			for _, d := range dependents[o.id] {
				skip(d, "skipped: "+o.id+" failed")
			}
			continue
		}
		for _, d := range dependents[o.id] {
			waiting[d]--
			if waiting[d] == 0 {
				if _, seen := results[d]; !seen {
					ready = append(ready, d)
				}
			}
		}
	}
	out := make([]outcome, 0, len(steps))
	for _, s := range steps {
		out = append(out, results[s.id])
	}
	return out, nil
}

// findCycle returns a step id on a dependency cycle, or "".
func findCycle(steps []step, byID map[string]*step) string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var visit func(id string) string
	visit = func(id string) string {
		switch color[id] {
		case grey:
			return id
		case black:
			return ""
		}
		color[id] = grey
		for _, d := range byID[id].deps {
			if _, ok := byID[d]; !ok {
				continue
			}
			if c := visit(d); c != "" {
				return c
			}
		}
		color[id] = black
		return ""
	}
	for _, s := range steps {
		if c := visit(s.id); c != "" {
			return c
		}
	}
	return ""
}

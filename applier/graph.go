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

// graph is one run of runGraph: the steps, their edges and what happened.
type graph struct {
	steps      []step
	byID       map[string]*step
	waiting    map[string]int      // unfinished dependencies per step
	dependents map[string][]string // reverse edges
	results    map[string]outcome
	done       func(outcome)
}

// newGraph indexes steps and refuses duplicates and cycles.
func newGraph(steps []step, done func(outcome)) (*graph, error) {
	g := &graph{steps: steps, byID: map[string]*step{}, waiting: map[string]int{},
		dependents: map[string][]string{}, results: map[string]outcome{}, done: done}
	for i := range steps {
		s := &steps[i]
		if _, dup := g.byID[s.id]; dup {
			return nil, fmt.Errorf("apply graph: step %s appears twice", s.id)
		}
		g.byID[s.id] = s
	}
	for _, s := range steps {
		for _, d := range s.deps {
			if _, ok := g.byID[d]; !ok {
				continue // a dependency outside this plan is already satisfied
			}
			g.waiting[s.id]++
			g.dependents[d] = append(g.dependents[d], s.id)
		}
	}
	if cyc := findCycle(steps, g.byID); cyc != "" {
		return nil, fmt.Errorf("apply graph: dependency cycle through %s", cyc)
	}
	return g, nil
}

func (g *graph) report(o outcome) {
	if g.done != nil {
		g.done(o)
	}
}

// skip marks id and everything downstream of it as not run.
func (g *graph) skip(id, why string) {
	if _, seen := g.results[id]; seen {
		return
	}
	o := outcome{id: id, skipped: why}
	g.results[id] = o
	g.report(o)
	for _, d := range g.dependents[id] {
		g.skip(d, "skipped: "+id+" did not complete")
	}
}

// finished records o and returns the steps it made ready.
func (g *graph) finished(o outcome) (ready []string) {
	g.results[o.id] = o
	if o.err != nil {
		for _, d := range g.dependents[o.id] {
			g.skip(d, "skipped: "+o.id+" failed")
		}
		return nil
	}
	for _, d := range g.dependents[o.id] {
		g.waiting[d]--
		if _, seen := g.results[d]; g.waiting[d] == 0 && !seen {
			ready = append(ready, d)
		}
	}
	return ready
}

// runGraph runs steps as a dependency graph with at most parallelism steps at
// once. A failed step skips everything that depends on it; independent
// branches go on. When stop is cancelled no new step starts, but steps in
// flight run to completion (they get a context that stop does not cancel) and
// are reported, so their results can be recorded. done is called once per
// step as soon as it ends (from the step's goroutine).
func runGraph(stop context.Context, steps []step, parallelism int, done func(outcome)) ([]outcome, error) {
	parallelism = max(parallelism, 1)
	g, err := newGraph(steps, done)
	if err != nil {
		return nil, err
	}
	var ready []string
	for _, s := range steps {
		if g.waiting[s.id] == 0 {
			ready = append(ready, s.id)
		}
	}
	sort.Strings(ready)
	work := context.WithoutCancel(stop)
	finished := make(chan outcome)
	running := 0
	for len(g.results) < len(steps) {
		// Start ready steps in order while there is room.
		for len(ready) > 0 && running < parallelism && stop.Err() == nil {
			s := g.byID[ready[0]]
			ready = ready[1:]
			running++
			go func() {
				start := time.Now()
				err := s.run(work)
				o := outcome{id: s.id, err: err, duration: time.Since(start)}
				g.report(o)
				finished <- o
			}()
		}
		if running == 0 {
			// Interrupted (or nothing left can run): everything else is skipped.
			for _, s := range steps {
				g.skip(s.id, "skipped: interrupted")
			}
			break
		}
		running--
		ready = append(ready, g.finished(<-finished)...)
	}
	out := make([]outcome, 0, len(steps))
	for _, s := range steps {
		out = append(out, g.results[s.id])
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

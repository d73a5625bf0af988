package applier

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestRunGraph(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		steps   []string          // ids
		deps    map[string]string // id -> comma-free single dependency
		fail    map[string]bool
		ran     []string // must have run
		skipped []string // must have been skipped
	}{
		{
			name:  "chain succeeds",
			steps: []string{"hive", "model", "worker"},
			deps:  map[string]string{"model": "hive", "worker": "model"},
			ran:   []string{"hive", "model", "worker"},
		},
		{
			name:    "failure skips only dependents",
			steps:   []string{"hive.a", "model.a", "worker.a", "hive.b", "model.b", "worker.b"},
			deps:    map[string]string{"model.a": "hive.a", "worker.a": "model.a", "model.b": "hive.b", "worker.b": "model.b"},
			fail:    map[string]bool{"hive.a": true},
			ran:     []string{"hive.a", "hive.b", "model.b", "worker.b"},
			skipped: []string{"model.a", "worker.a"},
		},
		{
			name:  "dependency outside the plan is satisfied",
			steps: []string{"worker"},
			deps:  map[string]string{"worker": "model.not-in-plan"},
			ran:   []string{"worker"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			ran := map[string]bool{}
			var steps []step
			for _, id := range tc.steps {
				id := id
				s := step{id: id, run: func(context.Context) error {
					mu.Lock()
					ran[id] = true
					mu.Unlock()
					if tc.fail[id] {
						return boom
					}
					return nil
				}}
				if d, ok := tc.deps[id]; ok {
					s.deps = []string{d}
				}
				steps = append(steps, s)
			}
			var reported atomic.Int32
			out, err := runGraph(context.Background(), steps, 3, func(outcome) { reported.Add(1) })
			if err != nil {
				t.Fatal(err)
			}
			if int(reported.Load()) != len(steps) || len(out) != len(steps) {
				t.Fatalf("reported %d outcomes, returned %d, want %d", reported.Load(), len(out), len(steps))
			}
			for _, id := range tc.ran {
				if !ran[id] {
					t.Errorf("%s did not run", id)
				}
			}
			for _, id := range tc.skipped {
				if ran[id] {
					t.Errorf("%s ran, want skipped", id)
				}
			}
			for _, o := range out {
				if tc.fail[o.id] != (o.err != nil) {
					t.Errorf("%s: err %v", o.id, o.err)
				}
			}
		})
	}
}

func TestRunGraphCycle(t *testing.T) {
	nop := func(context.Context) error { return nil }
	_, err := runGraph(context.Background(), []step{{id: "a", deps: []string{"b"}, run: nop}, {id: "b", deps: []string{"a"}, run: nop}}, 2, nil)
	if err == nil {
		t.Fatal("want a cycle error")
	}
}

// TestRunGraphInterrupt checks that an interrupt lets the step in flight
// finish and starts nothing after it.
func TestRunGraphInterrupt(t *testing.T) {
	stop, cancel := context.WithCancel(context.Background())
	var second atomic.Bool
	var inflightCtxErr error
	steps := []step{
		{id: "first", run: func(ctx context.Context) error {
			cancel() // Ctrl-C arrives while this step runs
			inflightCtxErr = ctx.Err()
			return nil
		}},
		{id: "second", deps: []string{"first"}, run: func(context.Context) error { second.Store(true); return nil }},
	}
	out, err := runGraph(stop, steps, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if inflightCtxErr != nil {
		t.Errorf("the step in flight saw its context cancelled: %v", inflightCtxErr)
	}
	if out[0].err != nil || out[0].skipped != "" {
		t.Errorf("first: %+v", out[0])
	}
	if second.Load() || out[1].skipped == "" {
		t.Errorf("second ran after the interrupt: %+v", out[1])
	}
}

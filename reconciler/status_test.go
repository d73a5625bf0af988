package reconciler

import (
	"strings"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/planner"
	"github.com/rbee-dev/rbee/state"
)

// A plan whose refresh found a worker below its slo is degraded in the
// daemon's status: drift that no change fixes, which a plan-only daemon
// reports like a change.
func TestPlanSummaryDegraded(t *testing.T) {
	worker := func(tps float64, restarts int) *state.WorkerRecord {
		return &state.WorkerRecord{Pool: "chat", Node: "a", Model: "m", State: state.WorkerIdle, Restarts: restarts,
			SLO: state.SLO{MinDecodeTPS: 15}, Canary: state.Canary{At: time.Unix(100, 0), DecodeTPS: tps}}
	}
	drift := func(before, after *state.WorkerRecord) *planner.Plan {
		return &planner.Plan{Refreshed: true, Drift: planner.Drift(snapshotOf(before), snapshotOf(after))}
	}
	cases := []struct {
		name     string
		plan     *planner.Plan
		degraded bool
	}{
		{"no drift", &planner.Plan{Refreshed: true}, false},
		{"a worker above its slo", drift(worker(20, 0), worker(30, 0)), false},
		{"a restarted worker is drift, not degraded", drift(worker(20, 0), worker(20, 1)), false},
		{"a worker below its slo", drift(worker(20, 0), worker(9.8, 0)), true},
	}
	for _, tc := range cases {
		s := planSummary(tc.plan, trigger{kind: "timer"}, time.Now())
		if s.Degraded != tc.degraded || strings.Contains(s.Description, degradedNote) != tc.degraded {
			t.Errorf("%s: degraded %v, description %q; want degraded %v", tc.name, s.Degraded, s.Description, tc.degraded)
		}
	}
}

func snapshotOf(rs ...state.Record) *state.Snapshot {
	s := state.NewSnapshot()
	for _, r := range rs {
		s.Put(r)
	}
	return s
}

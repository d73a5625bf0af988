// Package plannertest holds test doubles for the planner. Nothing here talks
// to a hive: use it only in tests.
package plannertest

import (
	"context"

	"github.com/rbee-dev/rbee/state"
)

// Refresher is a TEST DOUBLE of planner.Refresher. It never contacts a hive:
// it returns a copy of the snapshot changed by Mutate (or Err), simulating
// what a live refresh would find (a crashed worker, a missing model file, an
// unreachable hive).
type Refresher struct {
	Mutate func(live *state.Snapshot) // changes the copy; nil leaves it as recorded
	Err    error                      // returned instead of a snapshot when set
	Calls  int                        // how many times Refresh ran
}

// Refresh returns Err, or a mutated copy of snap.
func (r *Refresher) Refresh(_ context.Context, snap *state.Snapshot) (*state.Snapshot, error) {
	r.Calls++
	if r.Err != nil {
		return nil, r.Err
	}
	live := snap.Clone()
	if r.Mutate != nil {
		r.Mutate(live)
	}
	return live, nil
}

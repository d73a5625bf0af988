// Package operation runs one operation on the fleet, the way Terraform's
// local backend does: take the state lock, read the state, refresh it from
// the live hives, plan, record what the refresh found, ask for approval,
// apply, release the lock. rbee plan, apply, destroy and refresh and the
// rbee watch daemon all run through Run; they keep only their flags,
// prompts, triggers and output.
//
// One interrupt rule holds for every operation: a context cancelled before
// anything changed (waiting for the lock, refreshing, at the approval
// prompt) releases the lock and returns *Interrupted; once changes execute,
// no new change starts, the changes in flight finish and are recorded, and
// the result says it was interrupted.
package operation

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/rbee-dev/rbee/applier"
	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/modellock"
	"github.com/rbee-dev/rbee/planner"
	"github.com/rbee-dev/rbee/state"
)

// Kind is what an operation does. The set is closed.
type Kind int

// The kinds of operation.
const (
	Plan    Kind = iota // show what apply would change; writes nothing
	Apply               // make the fleet match the configuration
	Destroy             // remove everything in the state
	Refresh             // record what the live hives report
)

var kindNames = [...]string{"plan", "apply", "destroy", "refresh"}

// String is the kind's name, which is also the lock's operation.
func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return "invalid"
	}
	return kindNames[k]
}

// Request is one operation to run.
type Request struct {
	Kind   Kind
	Config *config.Config // the desired state; unused by Destroy and Refresh
	// Saved is a plan from rbee plan -out to execute exactly (Apply only);
	// ConfigHash is the configuration's hash now ("" when it does not load),
	// to refuse a stale plan.
	Saved      *planner.Plan
	ConfigHash string

	Destroy     bool     // Plan: plan deleting everything (plan -destroy)
	RefreshOnly bool     // Plan: report only what changed outside rbee
	NoRefresh   bool     // plan against the recorded state (-refresh=false)
	Targets     []string // -target addresses
	// LockOp names the lock's operation; empty means Kind's name.
	LockOp string
	Lock   LockPolicy
	// Optimistic plans without the lock first and takes it only when there
	// is something to record or apply, planning again if the state changed
	// meanwhile. The daemon uses it, so a quiet timer pass locks nothing.
	Optimistic  bool
	Parallelism int // changes at once; 0 means applier.DefaultParallelism

	// OnPlan is called with each plan made (to render it, or for status).
	OnPlan func(p *planner.Plan) error
	// Approve is asked before changes execute; nil approves. An error
	// (ErrDeclined, or the context's) stops the operation with nothing changed.
	Approve func(ctx context.Context, p *planner.Plan) error
	// OnApply is told that execution starts.
	OnApply func(p *planner.Plan)
	Out     io.Writer // apply progress lines; nil discards
}

// Result is what an operation did.
type Result struct {
	Plan     *planner.Plan   // the plan made (or the saved one)
	Recorded []state.Record  // records the refresh changed and the operation wrote
	Applied  *applier.Result // nil when nothing executed
}

// Backend runs operations against one state.
type Backend struct {
	State State
	// Refresher reads the live fleet; nil means applier.NewRefresher(State).
	Refresher planner.Refresher
	// BinarySHA256 gives a hive binary's checksum; nil means applier.HiveBinarySHA256.
	BinarySHA256 func(path string) (string, error)
	Log          *slog.Logger // nil discards
}

func (b *Backend) log() *slog.Logger {
	if b.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Log
}

func (r *Request) lockOp() string {
	if r.LockOp != "" {
		return r.LockOp
	}
	return r.Kind.String()
}

// Run runs the operation req describes.
func (b *Backend) Run(ctx context.Context, req Request) (*Result, error) {
	if req.Saved != nil {
		return b.runSaved(ctx, req)
	}
	res := &Result{}
	if req.Optimistic {
		snap, err := b.State.Snapshot(ctx)
		if err != nil {
			return nil, err
		}
		if res.Plan, err = b.plan(ctx, req, snap); err != nil {
			return nil, err
		}
		if !needsLock(req, snap, res.Plan) {
			return res, nil
		}
	}
	err := b.Locked(ctx, req.lockOp(), req.Lock, func(ctx context.Context, snap *state.Snapshot) error {
		if res.Plan == nil || res.Plan.Stale(snap, res.Plan.ConfigHash) != nil {
			if res.Plan != nil {
				b.log().Info("the state changed while waiting for the lock; planning again")
			}
			var err error
			if res.Plan, err = b.plan(ctx, req, snap); err != nil {
				return err
			}
		}
		return b.carryOut(ctx, req, snap, res)
	})
	return res, err
}

// needsLock reports whether an optimistic plan has something to record or apply.
func needsLock(req Request, snap *state.Snapshot, p *planner.Plan) bool {
	if req.Kind == Plan {
		return false
	}
	return p.HasChanges() || (p.Live != nil && len(applier.Changed(snap, p.Live)) > 0)
}

// carryOut does what the kind asks with the plan made under the lock.
func (b *Backend) carryOut(ctx context.Context, req Request, snap *state.Snapshot, res *Result) error {
	p := res.Plan
	switch {
	case req.Kind == Plan:
		return nil
	case req.Kind == Refresh || !p.HasChanges():
		var err error
		res.Recorded, err = b.record(ctx, snap, p)
		return err
	}
	if req.Approve != nil {
		if err := req.Approve(ctx, p); err != nil {
			if ctx.Err() != nil {
				return errStopped
			}
			return err
		}
	}
	if ctx.Err() != nil {
		return errStopped
	}
	var err error
	if res.Recorded, err = b.record(ctx, snap, p); err != nil {
		return err
	}
	res.Applied, err = b.execute(ctx, req, p)
	return err
}

// plan refreshes (unless told not to) and plans against snap.
func (b *Backend) plan(ctx context.Context, req Request, snap *state.Snapshot) (*planner.Plan, error) {
	destroy := req.Kind == Destroy || req.Destroy
	opts := planner.Options{Destroy: destroy, RefreshOnly: req.RefreshOnly || req.Kind == Refresh,
		Targets: req.Targets, BinarySHA256: b.BinarySHA256}
	if opts.BinarySHA256 == nil {
		opts.BinarySHA256 = applier.HiveBinarySHA256
	}
	if !req.NoRefresh {
		opts.Refresher = b.Refresher
		if opts.Refresher == nil {
			opts.Refresher = applier.NewRefresher(b.State)
		}
	}
	cfg := req.Config
	if destroy || req.Kind == Refresh {
		cfg = nil
	}
	var lock *modellock.Lock
	if !opts.RefreshOnly {
		var err error
		if lock, err = modellock.ForConfig(cfg); err != nil { // nil without .rbee.lock.hcl: nothing is enforced
			return nil, err
		}
		if lock != nil {
			opts.Pin = lock.Pin
		}
	}
	p, err := planner.Make(ctx, cfg, snap, opts)
	if err != nil {
		if ctx.Err() != nil {
			return nil, errStopped
		}
		return nil, err
	}
	if cfg != nil && !opts.RefreshOnly {
		if err := b.checkFit(ctx, cfg, p, opts.Refresher, lock); err != nil {
			return nil, err
		}
		warnOrphans(ctx, cfg, snap, p)
	}
	if req.OnPlan != nil {
		if err := req.OnPlan(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// record writes what the refresh before p learned (a restarted worker's pid
// and port, a model whose download finished, an unreachable node) and
// returns the records written. This is the one rule for every operation.
func (b *Backend) record(ctx context.Context, recorded *state.Snapshot, p *planner.Plan) ([]state.Record, error) {
	if p.Live == nil {
		return nil, nil
	}
	records := applier.Changed(recorded, p.Live)
	if len(records) == 0 {
		return nil, nil
	}
	if err := b.State.Put(context.WithoutCancel(ctx), records...); err != nil {
		return nil, fmt.Errorf("recording the refreshed state: %w", err)
	}
	return records, nil
}

// execute applies p; ctx ending stops new changes, not those in flight.
func (b *Backend) execute(ctx context.Context, req Request, p *planner.Plan) (*applier.Result, error) {
	if req.OnApply != nil {
		req.OnApply(p)
	}
	out := req.Out
	if out == nil {
		out = io.Discard
	}
	a := applier.New(b.State, out)
	if req.Parallelism > 0 {
		a.Parallelism = req.Parallelism
	}
	res, err := a.Apply(ctx, p)
	if err != nil && ctx.Err() != nil && res == nil {
		return nil, errStopped
	}
	return res, err
}

// runSaved executes a saved plan after checking it is not stale.
func (b *Backend) runSaved(ctx context.Context, req Request) (*Result, error) {
	res := &Result{Plan: req.Saved}
	err := b.Locked(ctx, req.lockOp(), req.Lock, func(ctx context.Context, snap *state.Snapshot) error {
		if err := req.Saved.Stale(snap, req.ConfigHash); err != nil {
			return &StaleError{Err: err}
		}
		if !req.Saved.HasChanges() {
			return nil
		}
		var err error
		res.Applied, err = b.execute(ctx, req, req.Saved)
		return err
	})
	return res, err
}

// StaleError is returned for a saved plan the state or configuration moved past.
type StaleError struct{ Err error }

func (e *StaleError) Error() string { return e.Err.Error() }
func (e *StaleError) Unwrap() error { return e.Err }

// Package reconciler is the daemon behind rbee watch: it keeps the fleet
// equal to the configuration without anyone typing apply. It re-plans when
// the configuration files change (debounced, editors' rename-on-save handled)
// and on a timer (refreshing from the hives, so drift such as a killed hive
// or a crashed worker is healed), applies through the applier under the
// state lock, and reports what it did on GET /v1/status and GET /metrics.
//
// An invalid configuration never tears anything down: it is reported with
// its diagnostics and the last valid configuration stays in force.
package reconciler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/rbee-dev/rbee/applier"
	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/digest"
	"github.com/rbee-dev/rbee/operation"
	"github.com/rbee-dev/rbee/planner"
	"github.com/rbee-dev/rbee/state"
)

// Defaults of Options.
const (
	DefaultInterval = 30 * time.Second
	DefaultDebounce = 300 * time.Millisecond
	// LockOperation is the operation recorded in the state lock while the daemon applies.
	LockOperation = "watch"
)

// Options configure a Reconciler.
type Options struct {
	ConfigPath string // file or folder of *.hcl files
	StateDir   string // state folder (.rbee beside the configuration)
	// State is the state to reconcile (the etcd backend of a state block);
	// nil opens the Pebble store in StateDir.
	State    operation.State
	Load     config.LoadOptions // variables; StateDir is filled in
	Interval time.Duration      // drift check period; default DefaultInterval
	Debounce time.Duration      // quiet time after a file event; default DefaultDebounce
	PlanOnly bool               // report, never apply
	// Parallelism of apply; 0 means applier.DefaultParallelism.
	Parallelism int
	// BinarySHA256 returns the sha256 of a hive binary (see planner.Options).
	BinarySHA256 func(path string) (string, error)
	// Refresher reads the live fleet; nil means an applier.Refresher with
	// the hive tokens of State.
	Refresher planner.Refresher
	// AllowDestroy lets the daemon apply plans that delete resources
	// (--allow-destroy); watch { allow_destroy = true } in the file does too.
	AllowDestroy bool
	Logger       *slog.Logger // nil discards
	Out          io.Writer    // apply progress lines; nil discards
}

// Reconciler is the daemon's loop. Create it with New, serve Handler, call Run.
type Reconciler struct {
	opts    Options
	log     *slog.Logger
	store   operation.State
	backend *operation.Backend
	watch   *fileWatch
	metrics *metrics

	good    *config.Config // the last valid configuration: the one in force
	invalid string         // the diagnostics last logged for an invalid file ("" when valid)

	applyStart *ApplySummary // the apply in progress

	mu     sync.Mutex
	status Status
}

// trigger is why a reconcile pass runs.
type trigger struct {
	kind string    // start, file, timer
	at   time.Time // first file event of the burst (file)
}

func (t trigger) eventAt() *time.Time {
	if t.at.IsZero() {
		return nil
	}
	at := t.at
	return &at
}

// New checks the options, opens the state and starts watching the
// configuration files. Nothing is planned or applied before Run.
func New(ctx context.Context, opts Options) (*Reconciler, error) {
	if opts.ConfigPath == "" {
		return nil, errors.New("no configuration path: pass --config FILE|DIR")
	}
	if opts.StateDir == "" {
		return nil, errors.New("no state folder: pass --state DIR")
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	opts.Load.StateDir = opts.StateDir
	st := opts.State
	if st == nil {
		pebble, err := state.Open(ctx, opts.StateDir, state.Options{})
		if err != nil {
			return nil, err
		}
		st = pebble
	}
	if opts.Refresher == nil {
		ref := applier.NewRefresher(st)
		ref.Canary.Log = opts.Logger // a canary that fails is a warning in the daemon's log
		opts.Refresher = ref
	}
	fw, err := newFileWatch(opts.ConfigPath, opts.Debounce, opts.Logger)
	if err != nil {
		return nil, err
	}
	mode := "apply"
	if opts.PlanOnly {
		mode = "plan-only"
	}
	r := &Reconciler{opts: opts, log: opts.Logger, store: st, watch: fw, metrics: newMetrics(),
		backend: &operation.Backend{State: st, Refresher: opts.Refresher, BinarySHA256: opts.BinarySHA256, Log: opts.Logger}}
	r.status = Status{Mode: mode, Phase: PhaseStarting, Config: ConfigStatus{Path: opts.ConfigPath}, Drift: []DriftItem{},
		Interval: opts.Interval.String(), StartedAt: time.Now(), StateDir: st.Dir()}
	return r, nil
}

// Status returns a copy of the daemon's status.
func (r *Reconciler) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

func (r *Reconciler) update(fn func(s *Status)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(&r.status)
}

func (r *Reconciler) phase(p, detail string) {
	r.update(func(s *Status) { s.Phase, s.PhaseDetail = p, detail })
}

// Run reconciles once at start, then on every configuration change and every
// Interval, until ctx is cancelled (SIGTERM). A cancellation during an apply
// starts no new change; the changes in flight finish and are recorded, the
// lock is released, and Run returns nil.
func (r *Reconciler) Run(ctx context.Context) error {
	wctx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatch()
	go r.watch.run(wctx)
	r.log.Info("rbee watch started", "config", r.opts.ConfigPath, "state", r.store.Dir(), "interval", r.opts.Interval,
		"debounce", r.opts.Debounce, "mode", r.status.Mode)

	timer := time.NewTimer(0)
	next := trigger{kind: "start"}
	for {
		if ctx.Err() != nil {
			r.update(func(s *Status) { s.Phase, s.StopRequested = PhaseStopping, true })
			r.log.Info("rbee watch stopped")
			return nil
		}
		select {
		case <-ctx.Done():
			continue
		case at := <-r.watch.changes:
			next = trigger{kind: "file", at: at}
			r.log.Info("configuration changed", "config", r.opts.ConfigPath)
		case <-timer.C:
		}
		r.reconcile(ctx, next)
		next = trigger{kind: "timer"}
		timer.Reset(r.opts.Interval)
		at := time.Now().Add(r.opts.Interval)
		r.update(func(s *Status) { s.NextCheck = &at })
	}
}

// fail records a failed pass.
func (r *Reconciler) fail(stage string, err error, extra ...any) {
	r.metrics.failures.WithLabelValues(stage).Inc()
	r.log.Error("reconcile failed", append([]any{"stage", stage, "err", err}, extra...)...)
	r.update(func(s *Status) {
		s.LastError = &ErrorStatus{At: time.Now(), Stage: stage, Message: err.Error()}
	})
}

// reconcile is one pass: load, then one operation (refresh, plan, and
// unless plan-only, record and apply under the state lock when something
// differs).
func (r *Reconciler) reconcile(ctx context.Context, t trigger) {
	start := time.Now()
	r.metrics.reconciles.WithLabelValues(t.kind).Inc()
	r.update(func(s *Status) { s.Reconciles++; s.LockHolder = "" })
	defer func() {
		r.metrics.duration.WithLabelValues(t.kind).Observe(time.Since(start).Seconds())
		r.phase(PhaseIdle, "")
	}()
	r.phase(PhasePlanning, "loading "+r.opts.ConfigPath)

	cfg, ok := r.load(t)
	if !ok {
		return
	}
	r.phase(PhasePlanning, "refreshing from the hives and planning")
	req := operation.Request{Kind: operation.Apply, Config: cfg, LockOp: LockOperation, Optimistic: true,
		Lock:        operation.LockPolicy{Timeout: -1, TakeOverStale: true, OnWait: r.waitingForLock},
		Parallelism: r.opts.Parallelism, Out: r.opts.Out,
		OnPlan:  func(p *planner.Plan) error { r.planned(p, t, start); return nil },
		OnApply: func(p *planner.Plan) { r.applying(p, t) },
		Approve: r.approve(cfg),
	}
	if r.opts.PlanOnly {
		req.Kind, req.Lock.Skip = operation.Plan, true
	}
	res, err := r.backend.Run(ctx, req)
	switch {
	case operation.IsInterrupted(err):
		return
	case errors.Is(err, errDeletes):
		r.fail("approval", err)
		return
	case res == nil || res.Applied == nil:
		if err != nil {
			r.fail(r.stage(), err)
			return
		}
	case !r.applied(res.Applied, err):
		return
	}
	if r.opts.PlanOnly && res.Plan.HasChanges() {
		r.log.Info("plan-only: not applying", "plan", r.Status().LastPlan.Description)
		return
	}
	if last := r.Status().LastPlan; r.opts.PlanOnly && last.Degraded {
		r.log.Warn("plan-only: the fleet is degraded; no change fixes it", "plan", last.Description)
	}
	r.succeeded()
}

// stage names the phase a pass failed in, for status and metrics.
func (r *Reconciler) stage() string {
	switch r.Status().Phase {
	case PhaseWaitingLock:
		return "lock"
	case PhaseApplying:
		return "apply"
	}
	return "plan"
}

// errDeletes marks a plan the daemon would not approve because it deletes.
var errDeletes = errors.New("rbee watch does not delete without --allow-destroy")

// approve is the daemon's approval: every plan, except one that deletes
// resources the file no longer declares, unless deletions are allowed
// (--allow-destroy or watch { allow_destroy = true }). A file emptied by a
// bad edit must not tear the fleet down unattended.
func (r *Reconciler) approve(cfg *config.Config) func(context.Context, *planner.Plan) error {
	return func(_ context.Context, p *planner.Plan) error {
		if r.opts.AllowDestroy || cfg.Watch.AllowDestroy {
			return nil
		}
		var deletes []string
		for _, c := range p.Changes {
			if c.Action == planner.Delete {
				deletes = append(deletes, c.Addr.String())
			}
		}
		if len(deletes) == 0 {
			return nil
		}
		return fmt.Errorf("%w: the plan deletes %d resource(s) (%s); nothing was applied. Review the plan with rbee plan and apply it with rbee apply, "+
			"or let the daemon delete with --allow-destroy or watch { allow_destroy = true }", errDeletes, len(deletes), strings.Join(deletes, ", "))
	}
}

// load reads the configuration; on errors it reports them and returns the
// last good configuration for a timer pass (drift is healed against what is
// in force), nothing for a file change.
func (r *Reconciler) load(t trigger) (*config.Config, bool) {
	cfg, diags := config.Load(r.opts.ConfigPath, r.opts.Load)
	now := time.Now()
	if diags.HasErrors() {
		items, text := diagnostics(diags)
		r.metrics.configValid.Set(0)
		r.metrics.failures.WithLabelValues("config").Inc()
		kept := "nothing runs yet: fix the file"
		if r.good != nil {
			kept = "the last valid configuration keeps running (hash " + digest.Short(r.good.Hash()) + "); nothing is torn down"
		}
		if text != r.invalid {
			r.log.Error("the configuration is invalid; "+kept, "config", r.opts.ConfigPath, "err", diags.Err(), "diagnostics", text)
			r.invalid = text
		} else {
			r.log.Debug("the configuration is still invalid", "config", r.opts.ConfigPath)
		}
		r.update(func(s *Status) {
			s.Config.Valid = false
			s.LastError = &ErrorStatus{At: now, Stage: "config", Message: diags.Err().Error() + "; " + kept, Diagnostics: items, Text: text}
		})
		if r.good == nil || t.kind == "file" {
			return nil, false
		}
		return r.good, true
	}
	if len(diags.Diags) > 0 {
		_, text := diagnostics(diags)
		r.log.Warn("configuration warnings", "diagnostics", text)
	}
	if r.invalid != "" {
		r.log.Info("the configuration is valid again", "config", r.opts.ConfigPath)
		r.invalid = ""
	}
	if r.good == nil || r.good.Hash() != cfg.Hash() {
		r.log.Info("configuration loaded", "config", r.opts.ConfigPath, "hash", digest.Short(cfg.Hash()),
			"nodes", len(cfg.Nodes), "models", len(cfg.Models), "pools", len(cfg.Pools))
	}
	r.good = cfg
	r.metrics.configValid.Set(1)
	r.update(func(s *Status) {
		s.Config.Valid, s.Config.Hash, s.Config.LoadedAt = true, cfg.Hash(), &now
		if s.LastError != nil && s.LastError.Stage == "config" {
			s.LastError = nil
		}
	})
	return cfg, true
}

// planned reports a plan in the log, the status and the metrics.
func (r *Reconciler) planned(p *planner.Plan, t trigger, started time.Time) {
	drift := driftItems(p)
	for _, d := range drift {
		r.log.Warn("drift", "resource", d.Addr, "reason", strings.Join(d.Reasons, "; "))
	}
	r.metrics.drift.Set(float64(len(drift)))
	r.metrics.pending.Set(float64(len(p.Changes)))
	if p.Live != nil {
		r.metrics.workers.Reset()
		for _, w := range p.Live.Workers {
			st := w.State
			if st == "" {
				st = "unknown"
			}
			r.metrics.workers.WithLabelValues(string(st)).Inc()
		}
	}
	sum := planSummary(p, t, started)
	for _, c := range p.Changes {
		r.log.Info("planned", "resource", c.Addr.String(), "action", c.Action.String(), "reason", strings.Join(c.Reasons, "; "))
	}
	if p.HasChanges() || sum.Degraded || t.kind != "timer" {
		r.log.Info("plan", "summary", sum.Description, "trigger", t.kind)
	}
	now := time.Now()
	r.update(func(s *Status) {
		s.LastPlan, s.Drift, s.DriftAt = sum, drift, &now
	})
}

// waitingForLock reports that someone else holds the state lock.
func (r *Reconciler) waitingForLock(holder state.LockInfo) {
	h := holder.String()
	hint := "waiting until it is released"
	r.log.Warn("the state is locked by someone else; "+hint, "holder", h)
	r.update(func(s *Status) {
		s.Phase, s.LockHolder = PhaseWaitingLock, h
		s.PhaseDetail = "the state is locked by " + h + "; " + hint
	})
}

// applying reports that the changes of p start.
func (r *Reconciler) applying(p *planner.Plan, t trigger) {
	r.update(func(s *Status) { s.LockHolder = "" })
	r.phase(PhaseApplying, p.Summary())
	r.applyStart = &ApplySummary{Trigger: t.kind, EventAt: t.eventAt(), StartedAt: time.Now(), Failed: []string{}}
	r.update(func(s *Status) { s.LastApply = r.applyStart })
	r.log.Info("applying", "trigger", t.kind, "plan", p.Summary())
}

// applied reports the outcome of an apply and whether it all succeeded.
func (r *Reconciler) applied(res *applier.Result, err error) bool {
	done := ApplySummary{StartedAt: time.Now(), Failed: []string{}}
	if r.applyStart != nil {
		done = *r.applyStart
	}
	applySummary(res, err, &done)
	elapsed := done.FinishedAt.Sub(done.StartedAt)
	r.metrics.applyDuration.Observe(elapsed.Seconds())
	r.update(func(s *Status) { s.LastApply = &done })
	switch {
	case err != nil:
		r.metrics.applies.WithLabelValues("failed").Inc()
		r.fail("apply", err)
		return false
	case res.Interrupted:
		r.metrics.applies.WithLabelValues("interrupted").Inc()
		r.log.Warn("apply interrupted: the changes in flight finished and were recorded; the next start converges",
			"added", res.Added, "changed", res.Changed, "destroyed", res.Destroyed, "not_run", len(res.Failures))
		return false
	case res.Err() != nil:
		r.metrics.applies.WithLabelValues("failed").Inc()
		r.fail("apply", res.Err())
		return false
	}
	r.metrics.applies.WithLabelValues("ok").Inc()
	r.log.Info("apply complete", "added", res.Added, "changed", res.Changed, "destroyed", res.Destroyed, "took", elapsed.Round(time.Millisecond))
	return true
}

// succeeded records a pass that ended with the fleet matching the configuration.
func (r *Reconciler) succeeded() {
	now := time.Now()
	r.metrics.lastSuccess.Set(float64(now.Unix()))
	r.update(func(s *Status) {
		s.LastSuccess = &now
		if s.LastError != nil && s.LastError.Stage != "config" {
			s.LastError = nil
		}
	})
}

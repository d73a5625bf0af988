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
	ConfigPath string             // file or folder of *.hcl files
	StateDir   string             // state folder (.rbee beside the configuration)
	Load       config.LoadOptions // variables; StateDir is filled in
	Interval   time.Duration      // drift check period; default DefaultInterval
	Debounce   time.Duration      // quiet time after a file event; default DefaultDebounce
	PlanOnly   bool               // report, never apply
	// Parallelism of apply; 0 means applier.DefaultParallelism.
	Parallelism int
	// BinarySHA256 returns the sha256 of a hive binary (see planner.Options).
	BinarySHA256 func(path string) (string, error)
	// Refresher reads the live fleet; nil means applier.NewRefresher(StateDir).
	Refresher planner.Refresher
	// LockPoll is how long one attempt to take the state lock waits before
	// the daemon says again that it is waiting; default 5 s.
	LockPoll time.Duration
	Logger   *slog.Logger // nil discards
	Out      io.Writer    // apply progress lines; nil discards
}

// Reconciler is the daemon's loop. Create it with New, serve Handler, call Run.
type Reconciler struct {
	opts    Options
	log     *slog.Logger
	store   *state.Store
	watch   *fileWatch
	metrics *metrics

	good    *config.Config // the last valid configuration: the one in force
	invalid string         // the diagnostics last logged for an invalid file ("" when valid)

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
	if opts.LockPoll <= 0 {
		opts.LockPoll = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Refresher == nil {
		opts.Refresher = applier.NewRefresher(opts.StateDir)
	}
	opts.Load.StateDir = opts.StateDir
	st, err := state.Open(ctx, opts.StateDir, state.Options{})
	if err != nil {
		return nil, err
	}
	fw, err := newFileWatch(opts.ConfigPath, opts.Debounce, opts.Logger)
	if err != nil {
		return nil, err
	}
	mode := "apply"
	if opts.PlanOnly {
		mode = "plan-only"
	}
	r := &Reconciler{opts: opts, log: opts.Logger, store: st, watch: fw, metrics: newMetrics()}
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

// reconcile is one pass: load, refresh and plan, then (unless plan-only and
// when something differs) apply under the state lock.
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
	p, err := r.plan(ctx, cfg, t)
	if err != nil {
		return
	}
	if r.opts.PlanOnly {
		if p.HasChanges() {
			r.log.Info("plan-only: not applying", "plan", r.Status().LastPlan.Description)
		} else {
			r.succeeded()
		}
		return
	}
	if !p.HasChanges() && len(p.Drift) == 0 {
		r.succeeded()
		return
	}

	r.phase(PhaseWaitingLock, "taking the state lock")
	lock, err := r.lock(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.fail("lock", err)
		}
		return
	}
	defer r.unlock(lock)
	r.update(func(s *Status) { s.LockHolder = "" })

	// Someone (a manual apply) may have changed the state while we waited:
	// plan again under the lock so nothing is done twice.
	snap, err := r.store.Snapshot(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.fail("state", err)
		}
		return
	}
	if p.Stale(snap, cfg.Hash()) != nil {
		r.log.Info("the state changed while waiting for the lock; planning again")
		if p, err = r.plan(ctx, cfg, t); err != nil {
			return
		}
	}
	if err := r.recordDrift(ctx, p); err != nil {
		r.fail("state", err)
		return
	}
	if !p.HasChanges() {
		r.succeeded()
		return
	}
	if r.apply(ctx, p, t) {
		r.succeeded()
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

// plan refreshes from the hives and plans, without the lock.
func (r *Reconciler) plan(ctx context.Context, cfg *config.Config, t trigger) (*planner.Plan, error) {
	started := time.Now()
	r.phase(PhasePlanning, "refreshing from the hives and planning")
	snap, err := r.store.Snapshot(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.fail("state", err)
		}
		return nil, err
	}
	p, err := planner.Make(ctx, cfg, snap, planner.Options{Refresher: r.opts.Refresher, BinarySHA256: r.opts.BinarySHA256})
	if err != nil {
		if ctx.Err() == nil {
			r.fail("plan", err)
		}
		return nil, err
	}
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
			r.metrics.workers.WithLabelValues(st).Inc()
		}
	}
	sum := planSummary(p, t, started)
	for _, c := range p.Changes {
		r.log.Info("planned", "resource", c.Addr.String(), "action", c.Action.String(), "reason", strings.Join(c.Reasons, "; "))
	}
	if p.HasChanges() || t.kind != "timer" {
		r.log.Info("plan", "summary", sum.Description, "trigger", t.kind)
	}
	now := time.Now()
	r.update(func(s *Status) {
		s.LastPlan, s.Drift, s.DriftAt = sum, drift, &now
	})
	return p, nil
}

// lock takes the state lock, waiting as long as someone else holds it.
func (r *Reconciler) lock(ctx context.Context) (*state.LockInfo, error) {
	said := ""
	for {
		info, err := r.store.Lock(ctx, LockOperation, r.opts.LockPoll)
		if err == nil {
			if said != "" {
				r.log.Info("got the state lock", "after", "waiting for "+said)
			}
			return info, nil
		}
		var le *state.LockedError
		if !errors.As(err, &le) {
			return nil, err
		}
		if le.Holder.Stale() {
			// A daemon has nobody to run rbee state unlock for it. The holder
			// died on this host, and every write is one atomic batch, so the
			// state it left is whole: take the lock over.
			if err := r.store.Unlock(ctx, le.Holder.ID); err != nil {
				return nil, fmt.Errorf("release the stale state lock: %w", err)
			}
			r.log.Warn("took over the state lock of a process that is gone", "holder", le.Holder.String())
			continue
		}
		holder := le.Holder.String()
		if holder != said {
			said = holder
			hint := "waiting until it is released"
			r.log.Warn("the state is locked by someone else; "+hint, "holder", holder)
			r.update(func(s *Status) {
				s.LockHolder = holder
				s.PhaseDetail = "the state is locked by " + holder + "; " + hint
			})
		}
	}
}

func (r *Reconciler) unlock(l *state.LockInfo) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.store.Unlock(ctx, l.ID); err != nil {
		r.fail("lock", fmt.Errorf("releasing the state lock: %w; release it with rbee state unlock %s", err, l.ID))
	}
}

// recordDrift writes what the refresh found into the state, as rbee refresh
// does, so the state (worker URLs, statuses) follows the live fleet even when
// there is nothing to apply. The caller holds the lock.
func (r *Reconciler) recordDrift(ctx context.Context, p *planner.Plan) error {
	var records []state.Record
	for _, c := range p.Drift {
		if c.After != nil {
			records = append(records, c.After)
		}
	}
	if len(records) == 0 {
		return nil
	}
	if err := r.store.Put(ctx, records...); err != nil {
		return fmt.Errorf("recording the drift found by refresh: %w", err)
	}
	r.log.Info("recorded the live state of drifted resources", "count", len(records))
	return nil
}

// apply executes p (the caller holds the lock) and reports whether it all succeeded.
func (r *Reconciler) apply(ctx context.Context, p *planner.Plan, t trigger) bool {
	r.phase(PhaseApplying, p.Summary())
	sum := &ApplySummary{Trigger: t.kind, EventAt: t.eventAt(), StartedAt: time.Now(), Failed: []string{}}
	r.update(func(s *Status) { s.LastApply = sum })
	r.log.Info("applying", "trigger", t.kind, "plan", p.Summary())

	a := applier.New(r.store, r.opts.Out)
	if r.opts.Parallelism > 0 {
		a.Parallelism = r.opts.Parallelism
	}
	res, err := a.Apply(ctx, p)
	done := *sum
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

// Package applier executes a plan: it installs hives over SSH (or on this
// machine), provisions models and spawns workers through the hives, as a
// dependency graph with nodes in parallel, and records every finished step in
// state at once. It also provides the live Refresher the planner uses.
package applier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/digest"
	"github.com/rbee-dev/rbee/gguf"
	"github.com/rbee-dev/rbee/planner"
	"github.com/rbee-dev/rbee/state"
)

// DefaultParallelism is how many steps run at once unless told otherwise.
const DefaultParallelism = 10

// Recorder is the state an applier reads and records every finished step
// in; state.Store is one.
type Recorder interface {
	Dir() string // the local state folder, beside which hive tokens are kept
	Snapshot(ctx context.Context) (*state.Snapshot, error)
	Put(ctx context.Context, records ...state.Record) error
	Delete(ctx context.Context, addrs ...state.Addr) error
}

// Applier executes plans against the fleet and records the results in Store.
type Applier struct {
	Store       Recorder
	Tokens      Tokens    // where hive tokens are kept (TokensOf(Store))
	Out         io.Writer // progress lines and the summary
	Parallelism int       // steps at once; 0 means DefaultParallelism
}

// New returns an applier for store that writes progress to out.
func New(store Recorder, out io.Writer) *Applier {
	return &Applier{Store: store, Tokens: TokensOf(store), Out: out, Parallelism: DefaultParallelism}
}

// Failure is a change that did not complete: it failed (Err) or never ran
// because something it depends on did not complete (Skipped).
type Failure struct {
	Addr    state.Addr
	Err     error
	Skipped string
}

// Result counts what apply did, Terraform style (a replacement is one add
// and one destroy), and lists what did not complete.
type Result struct {
	Added, Changed, Destroyed int
	Failures                  []Failure
	Interrupted               bool
}

// Summary is the last line of a successful apply.
func (r *Result) Summary() string {
	return fmt.Sprintf("Apply complete! %d added, %d changed, %d destroyed.", r.Added, r.Changed, r.Destroyed)
}

// Err is nil when every change completed, or an error listing the failures
// and their causes.
func (r *Result) Err() error {
	if len(r.Failures) == 0 && !r.Interrupted {
		return nil
	}
	var b strings.Builder
	failed := 0
	for _, f := range r.Failures {
		if f.Err != nil {
			failed++
		}
	}
	switch {
	case r.Interrupted:
		fmt.Fprintf(&b, "apply interrupted: %s did not complete (%d added, %d changed, %d destroyed before the interrupt)", changes(len(r.Failures)), r.Added, r.Changed, r.Destroyed)
	default:
		fmt.Fprintf(&b, "apply failed: %s failed, %d skipped (%d added, %d changed, %d destroyed); fix the causes below and run rbee apply again", changes(failed), len(r.Failures)-failed, r.Added, r.Changed, r.Destroyed)
	}
	for _, f := range r.Failures {
		if f.Err != nil {
			fmt.Fprintf(&b, "\n  - %s: %s", f.Addr, indentTail(f.Err.Error()))
		}
	}
	for _, f := range r.Failures {
		if f.Err == nil {
			fmt.Fprintf(&b, "\n  - %s: %s", f.Addr, f.Skipped)
		}
	}
	return errors.New(b.String())
}

func changes(n int) string {
	if n == 1 {
		return "1 change"
	}
	return fmt.Sprintf("%d changes", n)
}

func indentTail(s string) string { return strings.ReplaceAll(s, "\n", "\n      ") }

// Apply executes the plan. No step starts after stop is cancelled (Ctrl-C),
// but steps in flight finish and are recorded. The caller holds the state
// lock and has checked that the plan is not stale. The returned error is
// about apply itself; failed changes are in the Result (see Result.Err).
func (a *Applier) Apply(stop context.Context, p *planner.Plan) (*Result, error) {
	con := newConsole(a.Out)
	snap, err := a.Store.Snapshot(stop)
	if err != nil {
		return nil, err
	}
	ex := &executor{a: a, con: con, snap: snap, plan: p}
	steps := make([]step, 0, len(p.Changes))
	byAddr := map[string]*planner.Change{}
	for _, c := range p.Changes {
		if c.Action == planner.NoOp {
			continue
		}
		c := c
		deps := make([]string, len(c.DependsOn))
		for i, d := range c.DependsOn {
			deps[i] = d.String()
		}
		byAddr[c.Addr.String()] = c
		steps = append(steps, step{id: c.Addr.String(), deps: deps, run: func(ctx context.Context) error { return ex.run(ctx, c) }})
	}
	res := &Result{}
	var mu sync.Mutex
	_, err = runGraph(stop, steps, a.parallelism(), func(o outcome) {
		c := byAddr[o.id]
		mu.Lock()
		defer mu.Unlock()
		switch {
		case o.skipped != "":
			res.Failures = append(res.Failures, Failure{Addr: c.Addr, Skipped: o.skipped})
		case o.err != nil:
			con.printf("%s: %s failed after %s\n", c.Addr, verbs[c.Action].noun, roundDuration(o.duration))
			res.Failures = append(res.Failures, Failure{Addr: c.Addr, Err: o.err})
		default:
			con.printf("%s: %s complete after %s%s\n", c.Addr, verbs[c.Action].noun, roundDuration(o.duration), ex.detail(c))
			a, ch, d := c.Action.Counts()
			res.Added, res.Changed, res.Destroyed = res.Added+a, res.Changed+ch, res.Destroyed+d
		}
	})
	if err != nil {
		return nil, err
	}
	res.Interrupted = stop.Err() != nil
	sort.Slice(res.Failures, func(i, j int) bool { return res.Failures[i].Addr.Less(res.Failures[j].Addr) })
	return res, nil
}

func (a *Applier) parallelism() int {
	if a.Parallelism > 0 {
		return a.Parallelism
	}
	return DefaultParallelism
}

var verbs = map[planner.Action]struct{ ing, noun string }{
	planner.Create:  {"Creating...", "Creation"},
	planner.Update:  {"Modifying...", "Modifications"},
	planner.Replace: {"Replacing...", "Replacement"},
	planner.Delete:  {"Destroying...", "Destruction"},
}

// executor runs the changes of one apply.
type executor struct {
	a    *Applier
	con  *console
	snap *state.Snapshot // the state when apply started
	plan *planner.Plan

	mu      sync.Mutex
	details map[state.Addr]string
}

func (e *executor) setDetail(a state.Addr, s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.details == nil {
		e.details = map[state.Addr]string{}
	}
	e.details[a] = s
}

func (e *executor) detail(c *planner.Change) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if d := e.details[c.Addr]; d != "" {
		return " [" + d + "]"
	}
	return ""
}

func (e *executor) run(ctx context.Context, c *planner.Change) error {
	e.con.printf("%s: %s\n", c.Addr, verbs[c.Action].ing)
	switch c.Addr.Kind {
	case state.KindNode:
		return e.node(ctx, c)
	case state.KindModel:
		return e.model(ctx, c)
	case state.KindWorker:
		return e.worker(ctx, c)
	}
	return fmt.Errorf("unknown resource kind %q", c.Addr.Kind)
}

// node installs, upgrades, replaces or removes a hive.
func (e *executor) node(ctx context.Context, c *planner.Change) error {
	before, _ := c.Before.(*state.NodeRecord)
	after, _ := c.After.(*state.NodeRecord)
	store := e.a.Store
	if c.Action == planner.Delete || c.Action == planner.Replace {
		if before == nil {
			return fmt.Errorf("no recorded node to remove")
		}
		n := nodeFromRecord(before)
		t, err := Dial(ctx, n)
		if err != nil {
			return err
		}
		err = UninstallHive(ctx, t, n)
		t.Close()
		if err != nil {
			return err
		}
		if c.Action == planner.Delete {
			if err := store.Delete(ctx, c.Addr); err != nil {
				return err
			}
			return e.a.Tokens.Remove(before.Name)
		}
	}
	if after == nil {
		return fmt.Errorf("the plan has no desired record for %s", c.Addr)
	}
	n := nodeFromRecord(after)
	// Record that an install started, so an interrupted one shows in the next plan.
	pending := *after
	if before != nil && c.Action == planner.Update {
		pending = *before
	}
	pending.Status = state.NodeInstalling
	t, err := Dial(ctx, n)
	if err != nil {
		return err // nothing was touched on the node
	}
	defer t.Close()
	if err := store.Put(ctx, pending); err != nil {
		return err
	}
	h, err := InstallHive(ctx, t, n)
	if err != nil {
		pending.Status = state.NodeFailed
		pending.Warnings = []string{err.Error()}
		_ = store.Put(context.WithoutCancel(ctx), pending)
		return err
	}
	if err := e.a.Tokens.Put(n.Name, h.Token); err != nil {
		return fmt.Errorf("record the hive token of %s: %w", n.Name, err)
	}
	rec := *after
	rec.HiveURL, rec.HiveVersion, rec.BinarySHA256, rec.CPUVariant = h.URL, h.Version, h.BinarySHA256, h.CPUVariant
	rec.Status, rec.LastContact, rec.Warnings = state.NodeReady, time.Now().UTC(), nil
	e.setDetail(c.Addr, fmt.Sprintf("hive %s at %s", h.Version, h.URL))
	return store.Put(ctx, rec)
}

// hive returns a client for the hive of node: from the plan when the node is
// installed in this apply, else from state.
func (e *executor) hive(ctx context.Context, node string) (*hiveapi.Client, error) {
	snap, err := e.a.Store.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	n := snap.Node(node)
	if n == nil {
		n = e.snap.Node(node)
	}
	if n == nil {
		if ch := e.plan.Change(state.NodeAddr(node)); ch != nil {
			n, _ = ch.After.(*state.NodeRecord)
		}
	}
	if n == nil {
		return nil, fmt.Errorf("node %s is not in state: apply it first", node)
	}
	return e.a.Tokens.Client(n)
}

// nodeGoes reports whether the plan removes node (so its hive's content goes with it).
func (e *executor) nodeGoes(node string) bool {
	ch := e.plan.Change(state.NodeAddr(node))
	return ch != nil && ch.Action == planner.Delete
}

// model provisions or removes a model on a node's hive.
func (e *executor) model(ctx context.Context, c *planner.Change) error {
	store := e.a.Store
	after, _ := c.After.(*state.ModelRecord)
	cl, err := e.hive(ctx, c.Addr.Node)
	if err != nil {
		return err
	}
	if c.Action == planner.Delete || c.Action == planner.Replace {
		if c.Action == planner.Replace {
			// Workers that use the old file are replaced after this step; stop them first.
			if err := e.stopWorkersOf(ctx, cl, c.Addr.Node, c.Addr.Model); err != nil {
				return err
			}
		}
		if err := cl.DeleteModel(ctx, c.Addr.Model); !e.removed(c, err) {
			return fmt.Errorf("remove model %s from %s: %w", c.Addr.Model, c.Addr.Node, err)
		}
		if c.Action == planner.Delete {
			return store.Delete(ctx, c.Addr)
		}
	}
	if after == nil {
		return fmt.Errorf("the plan has no desired record for %s", c.Addr)
	}
	pending := *after
	pending.Status = state.ModelDownloading
	if err := store.Put(ctx, pending); err != nil {
		return err
	}
	update, finish := e.con.progress(c.Addr.String())
	m, err := cl.PutModel(ctx, after.Name, hiveapi.ModelSpec{Source: after.Source, File: after.File, Revision: after.Revision, SHA256: after.SHA256},
		func(p hiveapi.Progress) { update(p.Bytes, p.Total, p.Rate) })
	finish()
	if err != nil {
		pending.Status = state.ModelFailed
		_ = store.Put(context.WithoutCancel(ctx), pending)
		return fmt.Errorf("provision model %s on %s: %w", after.Name, c.Addr.Node, err)
	}
	rec := *after
	rec.ActualSHA256, rec.Path, rec.Size = m.SHA256, m.Path, m.Size
	rec.Status, rec.UpdatedAt = state.ModelReady, time.Now().UTC()
	e.setDetail(c.Addr, fmt.Sprintf("%s, sha256 %s…", gguf.FormatBytes(m.Size), digest.Short(m.SHA256)))
	return store.Put(ctx, rec)
}

// removed reports whether a DELETE on the hive for c left the resource gone:
// it succeeded, the hive did not know it (404), or the hive does not answer
// and c deletes a resource on a node that is being removed (uninstalling the
// hive removes it).
func (e *executor) removed(c *planner.Change, err error) bool {
	return err == nil || api.HasStatus(err, http.StatusNotFound) ||
		c.Action == planner.Delete && e.nodeGoes(c.Addr.Node) && !api.FromServer(err)
}

// stopWorkersOf stops the workers on node that use model (before the model is replaced).
func (e *executor) stopWorkersOf(ctx context.Context, cl *hiveapi.Client, node, model string) error {
	for a, w := range e.snap.Workers {
		if a.Node != node || w.Model != model {
			continue
		}
		if err := cl.DeleteWorker(ctx, planner.RecordedWorkerID(w)); err != nil && !api.HasStatus(err, http.StatusNotFound) {
			return fmt.Errorf("stop worker %s (it uses model %s, which is replaced): %w", a, model, err)
		}
	}
	return nil
}

// worker spawns, reconfigures, restarts or stops a worker.
func (e *executor) worker(ctx context.Context, c *planner.Change) error {
	store := e.a.Store
	after, _ := c.After.(*state.WorkerRecord)
	before, _ := c.Before.(*state.WorkerRecord)
	cl, err := e.hive(ctx, c.Addr.Node)
	if err != nil {
		return err
	}
	id := planner.WorkerID(c.Addr.Pool, c.Addr.Index)
	if before != nil {
		id = planner.RecordedWorkerID(before)
	}
	if c.CreateBeforeDestroy {
		return e.workerFirst(ctx, cl, c, id)
	}
	if c.Action == planner.Delete || c.Action == planner.Replace {
		if err := cl.DeleteWorker(ctx, id); !e.removed(c, err) {
			return fmt.Errorf("stop worker %s on %s: %w", id, c.Addr.Node, err)
		}
		if c.Action == planner.Delete {
			return store.Delete(ctx, c.Addr)
		}
	}
	if after == nil {
		return fmt.Errorf("the plan has no desired record for %s", c.Addr)
	}
	if after.ID != "" {
		id = after.ID
	}
	return e.startWorker(ctx, cl, c, id)
}

// startWorker starts the desired worker of c under id, waits until it is
// ready and records it.
func (e *executor) startWorker(ctx context.Context, cl *hiveapi.Client, c *planner.Change, id string) error {
	after := c.After.(*state.WorkerRecord)
	st, err := cl.PutWorker(ctx, id, workerConfig(after), true)
	if err != nil {
		return fmt.Errorf("start worker %s on %s: %w%s", id, c.Addr.Node, err, e.workerLogs(ctx, cl, id))
	}
	if !hiveapi.Ready(st.State) {
		return fmt.Errorf("worker %s on %s is %s, not ready: %s%s", id, c.Addr.Node, st.State, st.LastError, e.workerLogs(ctx, cl, id))
	}
	rec := *after
	rec.ID, rec.URL, rec.PID, rec.Restarts = id, st.URL, st.PID, st.Restarts
	rec.State = workerState(st.State)
	setRuntime(&rec, st)
	if rec.Port == 0 {
		rec.Port = st.Port
	}
	rec.UpdatedAt = time.Now().UTC()
	e.setDetail(c.Addr, fmt.Sprintf("%s, pid %d", st.URL, st.PID))
	return e.a.Store.Put(ctx, rec)
}

// workerFirst replaces a worker create-before-destroy: the new one starts
// under its other id and is ready (and recorded) before the old one, under
// oldID, drains its requests in flight and stops. A replica is never out
// of service.
func (e *executor) workerFirst(ctx context.Context, cl *hiveapi.Client, c *planner.Change, oldID string) error {
	newID := c.After.(*state.WorkerRecord).ID
	if err := e.startWorker(ctx, cl, c, newID); err != nil {
		// The old worker still serves; the one that failed to start goes.
		if derr := cl.DeleteWorker(context.WithoutCancel(ctx), newID); derr != nil && !api.HasStatus(derr, http.StatusNotFound) {
			err = fmt.Errorf("%w (and removing it failed: %v)", err, derr)
		}
		return err
	}
	if err := cl.DeleteWorker(ctx, oldID); err != nil && !api.HasStatus(err, http.StatusNotFound) {
		return fmt.Errorf("the new worker %s serves, but stopping the old one, %s, on %s failed: %w; it keeps running: stop it with DELETE /v1/workers/%s on the hive", newID, oldID, c.Addr.Node, err, oldID)
	}
	return nil
}

// workerConfig is what the hive is asked to run for the desired worker w.
func workerConfig(w *state.WorkerRecord) hiveapi.WorkerConfig {
	duration := func(d time.Duration) string {
		if d <= 0 {
			return ""
		}
		return d.String()
	}
	return hiveapi.WorkerConfig{Model: w.Model, Pool: w.Pool, Port: w.Port, Slots: w.Slots, CtxSize: w.CtxSize,
		Threads: w.Threads, Backend: w.Backend, Device: w.Device, GPULayers: w.GPULayers, FlashAttn: w.FlashAttn,
		KVCacheType: w.KVCacheType, ChatTemplate: w.ChatTemplate, Embeddings: w.Embeddings,
		IdleTimeout: duration(w.IdleTimeout), LoadTimeout: duration(w.LoadTimeout), DrainTimeout: duration(w.DrainTimeout)}
}

// workerLogs returns the last lines a worker wrote, for error messages.
func (e *executor) workerLogs(ctx context.Context, cl *hiveapi.Client, id string) string {
	lines, err := cl.WorkerLogs(ctx, id, 10)
	if err != nil || len(lines) == 0 {
		return ""
	}
	return "\nlast lines of the worker's output:\n  " + strings.Join(lines, "\n  ")
}

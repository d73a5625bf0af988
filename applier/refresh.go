package applier

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/canary"
	"github.com/rbee-dev/rbee/planner"
	"github.com/rbee-dev/rbee/state"
)

// Refresher asks every hive in state for its live state (GET /v1/state) and
// returns the state as it really is: unreachable nodes, dead or failed
// workers, deleted or changed models and replaced hive binaries show up in
// the records' statuses, for the planner to turn into drift.
type Refresher struct {
	Tokens  Tokens
	Timeout time.Duration // per hive; default 10 s
	// Canary measures the workers of pools with an SLO on a free slot; nil
	// measures nothing.
	Canary *canary.Fleet

	mu   sync.Mutex
	last map[string]*hiveapi.State // what the hives answered in the last Refresh
}

// HiveStates is what each hive that answered the last Refresh reported
// (resources, catalog), for checks that need more than the records.
func (r *Refresher) HiveStates() map[string]*hiveapi.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// NewRefresher returns the live refresher of a state, with the hive tokens
// it keeps (TokensOf).
func NewRefresher(st interface{ Dir() string }) *Refresher {
	return &Refresher{Tokens: TokensOf(st), Timeout: 10 * time.Second, Canary: &canary.Fleet{}}
}

// Live is what one hive answered, or why it did not.
type Live struct {
	State *hiveapi.State
	Err   error
}

// Query asks all the given nodes' hives in parallel.
func (r *Refresher) Query(ctx context.Context, nodes []*state.NodeRecord) map[string]Live {
	out := make(map[string]Live, len(nodes))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			l := r.queryOne(ctx, n)
			mu.Lock()
			out[n.Name] = l
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func (r *Refresher) queryOne(ctx context.Context, n *state.NodeRecord) Live {
	c, err := r.Tokens.Client(n)
	if err != nil {
		return Live{Err: err}
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := c.State(qctx)
	if err != nil {
		return Live{Err: err}
	}
	return Live{State: &st}
}

// Refresh returns a copy of snap updated from the live hives. Records of
// unreachable nodes keep their last known content with the node marked
// unreachable (a warning says why).
func (r *Refresher) Refresh(ctx context.Context, snap *state.Snapshot) (*state.Snapshot, error) {
	out := snap.Clone()
	nodes := make([]*state.NodeRecord, 0, len(out.Nodes))
	for _, n := range out.Nodes {
		nodes = append(nodes, n)
	}
	live := r.Query(ctx, nodes)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	answered := make(map[string]*hiveapi.State, len(live))
	for name, l := range live {
		if l.State != nil {
			answered[name] = l.State
		}
	}
	r.mu.Lock()
	r.last = answered
	r.mu.Unlock()
	now := time.Now().UTC()
	for _, n := range out.Nodes {
		Merge(out, n.Name, live[n.Name], now)
	}
	if r.Canary != nil {
		r.Canary.Measure(ctx, out, snap, r.Tokens.Get, now)
	}
	return out, nil
}

// Merge writes what node's hive answered into snap.
func Merge(snap *state.Snapshot, node string, l Live, now time.Time) {
	n := snap.Node(node)
	if n == nil {
		return
	}
	if l.State == nil {
		n.Status = state.NodeUnreachable
		n.Warnings = []string{fmt.Sprintf("hive at %s does not answer: %s", n.HiveURL, shortErr(l.Err))}
		if api.HasStatus(l.Err, http.StatusUnauthorized) {
			n.Status = state.NodeTokenRefused
			n.Warnings = []string{fmt.Sprintf("hive at %s refused rbee's token (401)", n.HiveURL)}
		}
		return
	}
	st := l.State
	n.Status = state.NodeReady
	n.LastContact = now
	n.Warnings = nil
	n.HiveVersion = st.Version
	n.CPUVariant = st.Resources.CPUVariant
	if st.BinarySHA256 != "" {
		// A different checksum than the one apply installed means the binary was
		// replaced: the planner compares against the configured binary.
		n.BinarySHA256 = st.BinarySHA256
	}
	models := map[string]hiveapi.Model{}
	for _, m := range st.Models {
		models[m.Name] = m
	}
	for a, m := range snap.Models {
		if a.Node != node {
			continue
		}
		lm, ok := models[m.Name]
		switch {
		case !ok:
			m.Status = state.ModelMissing
		case m.ActualSHA256 != "" && lm.SHA256 != "" && lm.SHA256 != m.ActualSHA256:
			m.Status = state.ModelChanged
			m.ActualSHA256 = lm.SHA256
		default:
			m.Status = state.ModelReady
			if lm.SHA256 != "" {
				m.ActualSHA256 = lm.SHA256
			}
			m.Path, m.Size = lm.Path, lm.Size
		}
	}
	workers := map[string]hiveapi.WorkerStatus{}
	for _, w := range st.Workers {
		workers[w.ID] = w
	}
	for a, w := range snap.Workers {
		if a.Node != node {
			continue
		}
		id := planner.RecordedWorkerID(w)
		lw, ok := workers[id]
		if !ok {
			w.State = state.WorkerMissing
			w.PID, w.URL = 0, ""
			continue
		}
		w.ID = id
		w.State = workerState(lw.State)
		w.PID, w.URL, w.Restarts = lw.PID, lw.URL, lw.Restarts
		setRuntime(w, lw)
		if lw.Port != 0 {
			w.Port = lw.Port // a restarted worker may listen elsewhere
		}
	}
}

// setRuntime records what the hive says worker w computes with; a worker
// that has not been ready since it (re)started keeps what was recorded.
func setRuntime(w *state.WorkerRecord, st hiveapi.WorkerStatus) {
	if st.Runtime.Backend != "" {
		w.CPUVariant, w.OffloadedLayers = st.Runtime.CPUVariant, st.Runtime.OffloadedLayers
	}
}

// workerState maps the hive's worker states onto the state package's.
func workerState(s string) state.WorkerState {
	switch s {
	case hiveapi.StateIdle:
		return state.WorkerIdle
	case hiveapi.StateBusy:
		return state.WorkerBusy
	case hiveapi.StateLoading, hiveapi.StateStarting:
		return state.WorkerLoading
	case hiveapi.StateFailed:
		return state.WorkerFailed
	case hiveapi.StateRestarting:
		return state.WorkerCrashed
	case hiveapi.StateStopped, hiveapi.StateStopping:
		return state.WorkerStopped
	case hiveapi.StateDraining:
		return state.WorkerDraining
	}
	return state.WorkerState(s)
}

func shortErr(err error) string {
	if err == nil {
		return "no answer"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": dial tcp"); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// Changed returns the records of live (a refreshed copy of recorded) whose
// content differs from the recorded one, contact and update times aside:
// every live field (pid, port, url, state, restarts, model size...) that
// refresh learned, for the caller to write to the state.
func Changed(recorded, live *state.Snapshot) []state.Record {
	var out []state.Record
	for _, a := range live.Addrs() {
		after, _ := live.Get(a)
		before, ok := recorded.Get(a)
		if !ok || !sameContent(before, after) {
			out = append(out, after)
		}
	}
	return out
}

// sameContent compares two records ignoring when they were last contacted
// or updated.
func sameContent(a, b state.Record) bool {
	switch x := a.(type) {
	case *state.NodeRecord:
		y, ok := b.(*state.NodeRecord)
		if !ok {
			return false
		}
		xc, yc := *x, *y
		xc.LastContact, yc.LastContact = time.Time{}, time.Time{}
		return reflect.DeepEqual(xc, yc)
	case *state.ModelRecord:
		y, ok := b.(*state.ModelRecord)
		if !ok {
			return false
		}
		xc, yc := *x, *y
		xc.UpdatedAt, yc.UpdatedAt = time.Time{}, time.Time{}
		return xc == yc
	case *state.WorkerRecord:
		y, ok := b.(*state.WorkerRecord)
		if !ok {
			return false
		}
		xc, yc := *x, *y
		xc.UpdatedAt, yc.UpdatedAt = time.Time{}, time.Time{}
		return xc == yc
	}
	return reflect.DeepEqual(a, b)
}

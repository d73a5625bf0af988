package gateway

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/agents/worker/workerapi"
)

// worker is one worker the gateway may route to, with what its last poll
// said and what the gateway itself has running on it.
type worker struct {
	key               string // the state address, worker.POOL[NODE/INDEX]
	pool, model, node string
	id                string // the hive's worker id
	url, token        string

	polled     bool   // a poll has answered since the worker appeared
	ready      bool   // the last poll said ready (idle or busy)
	state      string // the worker's state, or "down" when it did not answer
	total      int    // slots
	othersBusy int    // slots busy with requests that did not come through this gateway
	refused    bool   // refused a request since the last poll (draining, shutting down, unreachable)
	inflight   int    // requests this gateway has on the worker now
	gone       bool   // no longer in the state
}

// Worker states the gateway reports besides the worker's own.
const (
	stateDown     = "down"     // GET /v1/ready failed
	stateUnknown  = "unknown"  // not polled yet
	stateDraining = "draining" // the worker finishes what it has and takes nothing new
)

// routable reports whether a new request may go to w.
func (w *worker) routable() bool { return w.ready && !w.refused && !w.gone }

// free is how many more requests w can take now, by the gateway's count.
func (w *worker) free() int { return w.total - w.othersBusy - w.inflight }

// load is how many of w's slots are in use, by the gateway's count.
func (w *worker) load() int { return w.othersBusy + w.inflight }

// fleet is the gateway's view of the workers: which exist (from the state and
// the hives) and whether they are ready (polled in the background), the
// queues of requests waiting for a slot, and the prefix affinity table. One
// mutex guards it all, so that two requests never take the same last slot.
type fleet struct {
	mu       sync.Mutex
	workers  map[string]*worker
	queues   map[string]*queue
	affinity *affinity
	seq      uint64 // order of waiters across queues
	rr       int    // rotates ties between equally free workers
	loadErr  error  // why the last read of the state failed, if it did
}

func newFleet(affinityEntries int) *fleet {
	return &fleet{workers: map[string]*worker{}, queues: map[string]*queue{}, affinity: newAffinity(affinityEntries)}
}

// found is one worker as the state and its hive describe it.
type found struct {
	key, pool, model, node, id, url, token string
}

// discover lists the workers of the state, at the address their hive reports
// when it answers (a worker the hive restarted may have a new port).
func (s *Server) discover(ctx context.Context) ([]found, error) {
	snap, err := s.opts.State.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the state in %s: %w", s.opts.State.Dir(), err)
	}
	live := map[string]map[string]hiveapi.WorkerStatus{} // node → id → status
	for _, n := range snap.Nodes {
		hc, err := s.hive(n)
		if err != nil {
			continue
		}
		hctx, cancel := context.WithTimeout(ctx, s.opts.PollInterval+time.Second)
		ws, err := hc.Workers(hctx)
		cancel()
		if err != nil {
			s.log.Debug("the hive did not list its workers", "node", n.Name, "err", err)
			continue
		}
		live[n.Name] = map[string]hiveapi.WorkerStatus{}
		for _, w := range ws {
			live[n.Name][w.ID] = w
		}
	}
	var out []found
	for a, w := range snap.Workers {
		f := found{key: a.String(), pool: a.Pool, model: w.Model, node: a.Node, id: w.ID, url: w.URL}
		if st, ok := live[a.Node][w.ID]; ok && st.URL != "" {
			f.url = st.URL
		}
		if f.url == "" {
			continue
		}
		tok, err := s.token(a.Node)
		if err != nil {
			s.log.Warn("no token for the workers of a node; skipping them", "node", a.Node, "err", err)
			continue
		}
		f.token = tok
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out, nil
}

// update replaces the set of workers with ws, keeping what the gateway knows
// about the ones that stay.
func (f *fleet) update(ws []found) {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[string]bool{}
	for _, d := range ws {
		seen[d.key] = true
		w := f.workers[d.key]
		if w == nil || w.id != d.id || w.url != d.url {
			// A new worker, or a replaced one: poll it before routing to it.
			w = &worker{key: d.key, state: stateUnknown}
			f.workers[d.key] = w
		}
		w.pool, w.model, w.node, w.id, w.url, w.token = d.pool, d.model, d.node, d.id, d.url, d.token
	}
	for k, w := range f.workers {
		if !seen[k] {
			w.gone = true
			delete(f.workers, k)
		}
	}
	f.dispatchLocked()
}

// snapshot returns the workers now known, sorted by address.
func (f *fleet) list() []*worker {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*worker, 0, len(f.workers))
	for _, w := range f.workers {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// poll asks every worker for GET /v1/ready at once and records the answers.
func (s *Server) poll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, w := range s.fleet.list() {
		s.fleet.mu.Lock()
		url, token, before := w.url, w.token, w.inflight
		s.fleet.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, s.opts.PollInterval)
			defer cancel()
			cl := workerapi.NewClient(url, token)
			cl.HTTP = s.http
			rd, err := cl.Ready(pctx)
			if ctx.Err() != nil {
				return
			}
			s.fleet.record(w, rd, err, before)
		}()
	}
	wg.Wait()
}

// record applies one poll's answer; before is the gateway's in-flight count
// on w when the poll was sent.
func (f *fleet) record(w *worker, rd workerapi.Ready, err error, before int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.polled = true
	if err != nil {
		w.ready, w.state = false, stateDown
		return
	}
	w.ready, w.state, w.total, w.refused = rd.Ready, rd.State, rd.SlotsTotal, false
	// The worker counts the gateway's requests that had reached it: every
	// busy slot beyond those is someone else's (rbee infer, a direct client).
	busy := rd.SlotsTotal - rd.SlotsFree
	w.othersBusy = max(0, busy-max(before, w.inflight))
	f.dispatchLocked()
}

// refuse takes w out of the rotation until its next poll: it answered that it
// takes no new request (draining, shutting down), or could not be reached.
func (f *fleet) refuse(w *worker, why string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.refused = true
	if why != "" {
		w.state = why
	}
}

// full records that w answered busy: its slots count as taken until its
// next poll says otherwise.
func (f *fleet) full(w *worker) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.othersBusy = max(0, w.total-w.inflight)
}

// targetOf resolves a request's model name: a pool first, then a model.
type target struct {
	name, kind string // kind: "pool" or "model"
}

// resolveLocked finds the target of name, or ok false.
func (f *fleet) resolveLocked(name string) (target, bool) {
	for _, w := range f.workers {
		if w.pool == name {
			return target{name: name, kind: "pool"}, true
		}
	}
	for _, w := range f.workers {
		if w.model == name {
			return target{name: name, kind: "model"}, true
		}
	}
	return target{}, false
}

// resolve is resolveLocked under the lock; on failure it returns every name
// that exists, for the error.
func (f *fleet) resolve(name string) (target, []string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.resolveLocked(name)
	if ok {
		return t, nil, true
	}
	var names []string
	for _, e := range f.entriesLocked() {
		names = append(names, e.name)
	}
	return target{}, names, false
}

// members are the workers of t.
func (f *fleet) membersLocked(t target) []*worker {
	var out []*worker
	for _, w := range f.workers {
		if (t.kind == "pool" && w.pool == t.name) || (t.kind == "model" && w.model == t.name) {
			out = append(out, w)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// entry is one name of GET /v1/models.
type entry struct {
	name, kind     string
	ready, workers int
}

// entriesLocked lists every pool and every model that has a pool, with how
// many of their workers are ready.
func (f *fleet) entriesLocked() []entry {
	pools, models := map[string]*entry{}, map[string]*entry{}
	for _, w := range f.workers {
		for _, e := range []*entry{at(pools, w.pool, "pool"), at(models, w.model, "model")} {
			e.workers++
			if w.routable() {
				e.ready++
			}
		}
	}
	var out []entry
	for _, e := range pools {
		out = append(out, *e)
	}
	for name, e := range models {
		if pools[name] == nil { // a pool of the same name wins
			out = append(out, *e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func at(m map[string]*entry, name, kind string) *entry {
	e := m[name]
	if e == nil {
		e = &entry{name: name, kind: kind}
		m[name] = e
	}
	return e
}

// refreshLoop keeps the fleet fresh: the state and the hives every
// StateInterval, every worker's readiness every PollInterval.
func (s *Server) refreshLoop(ctx context.Context) {
	s.refreshState(ctx)
	s.poll(ctx)
	close(s.primed)
	stateTick := time.NewTicker(s.opts.StateInterval)
	defer stateTick.Stop()
	pollTick := time.NewTicker(s.opts.PollInterval)
	defer pollTick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stateTick.C:
			s.refreshState(ctx)
		case <-pollTick.C:
			s.poll(ctx)
		}
	}
}

func (s *Server) refreshState(ctx context.Context) {
	ws, err := s.discover(ctx)
	s.fleet.mu.Lock()
	s.fleet.loadErr = err
	s.fleet.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("could not read the fleet; keeping the workers known so far", "err", err)
		}
		return
	}
	s.fleet.update(ws)
}

// httpClient is the client for workers and hives: no total timeout (streams
// are long), a short dial timeout, no compression (it would buffer streams).
func httpClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	t.DisableCompression = true
	return &http.Client{Transport: t}
}

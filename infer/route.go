package infer

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/state"
)

// candidate is a worker that may take the request.
type candidate struct {
	worker Worker
	rec    *state.WorkerRecord // nil for an ephemeral worker
	token  string
	tokErr error
	ready  workerapi.Ready
}

// candidates are the recorded workers of the model that pass the filters.
func (r *Router) candidates(snap *state.Snapshot, req Request) []*candidate {
	var out []*candidate
	tokens := map[string]string{}
	tokErrs := map[string]error{}
	for a, w := range snap.Workers {
		if w.Model != req.Model || (req.Node != "" && a.Node != req.Node) || (req.Pool != "" && a.Pool != req.Pool) {
			continue
		}
		if _, ok := tokens[a.Node]; !ok && tokErrs[a.Node] == nil {
			t, err := r.token(a.Node)
			tokens[a.Node], tokErrs[a.Node] = t, err
		}
		out = append(out, &candidate{
			worker: Worker{Addr: a, ID: w.ID, Node: a.Node, URL: w.URL},
			rec:    w, token: tokens[a.Node], tokErr: tokErrs[a.Node],
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].worker.Addr.Less(out[j].worker.Addr) })
	return out
}

// probe asks every candidate for GET /v1/ready at once and returns the ready
// ones, most free slots first (ties in random order, to spread the load), and
// a note for each one that is not ready.
func (r *Router) probe(ctx context.Context, cands []*candidate) ([]*candidate, []string) {
	timeout := r.ProbeTimeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	notes := make([]string, len(cands))
	var wg sync.WaitGroup
	for i, c := range cands {
		switch {
		case c.tokErr != nil:
			notes[i] = fmt.Sprintf("%s: %v", c.worker.Name(), c.tokErr)
			continue
		case c.worker.URL == "":
			notes[i] = fmt.Sprintf("%s: no address recorded (it never started)", c.worker.Name())
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			cl := workerapi.NewClient(c.worker.URL, c.token)
			cl.HTTP = r.HTTP
			rd, err := cl.Ready(pctx)
			c.ready = rd
			switch {
			case err != nil:
				notes[i] = fmt.Sprintf("%s (%s): %v", c.worker.Name(), c.worker.URL, err)
			case !rd.Ready && rd.State == workerapi.StateLoading:
				notes[i] = fmt.Sprintf("%s (%s): still loading (%.0f%%)", c.worker.Name(), c.worker.URL, 100*rd.Progress)
			case !rd.Ready:
				notes[i] = fmt.Sprintf("%s (%s): not ready (%s)", c.worker.Name(), c.worker.URL, rd.State)
			}
		}()
	}
	wg.Wait()
	var ready []*candidate
	var out []string
	for i, c := range cands {
		if notes[i] == "" && c.ready.Ready {
			ready = append(ready, c)
		} else if notes[i] != "" {
			out = append(out, notes[i])
		}
	}
	rand.Shuffle(len(ready), func(i, j int) { ready[i], ready[j] = ready[j], ready[i] })
	slices.SortStableFunc(ready, func(a, b *candidate) int { return cmp.Compare(b.ready.SlotsFree, a.ready.SlotsFree) })
	return ready, out
}

// wake asks the hives of candidates that did not answer ready what became of
// them: a worker the hive stopped after its idle timeout is started again
// (PUT with its own configuration), and a worker the hive restarted on
// another port is used at its new address.
func (r *Router) wake(ctx context.Context, snap *state.Snapshot, req Request, cands []*candidate, notes []string) ([]*candidate, []string) {
	byNode := map[string][]*candidate{}
	for _, c := range cands {
		if c.tokErr == nil && !c.ready.Ready && c.worker.ID != "" {
			byNode[c.worker.Node] = append(byNode[c.worker.Node], c)
		}
	}
	var ready []*candidate
	var out []string
	for node, cs := range byNode {
		n := snap.Node(node)
		if n == nil {
			continue
		}
		hc, err := r.hive(n)
		if err != nil {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		live, err := hc.Workers(lctx)
		cancel()
		if err != nil {
			out = append(out, fmt.Sprintf("hive of node %s (%s): %v", node, hc.BaseURL, err))
			continue
		}
		for _, c := range cs {
			i := slices.IndexFunc(live, func(ws hiveapi.WorkerStatus) bool { return ws.ID == c.worker.ID })
			if i < 0 {
				continue
			}
			ws := live[i]
			if ws.State == hiveapi.StateStopped {
				r.log().Info("starting " + c.worker.Name() + " again (the hive stopped it after its idle timeout)")
				st, err := hc.PutWorker(ctx, ws.ID, ws.Config, true)
				if err != nil {
					out = append(out, fmt.Sprintf("%s: starting it again failed: %v", c.worker.Name(), err))
					continue
				}
				ws = st
			}
			if !hiveapi.Ready(ws.State) || ws.URL == "" {
				continue
			}
			c.worker.URL = ws.URL
			c.ready = workerapi.Ready{Ready: true, State: ws.State, SlotsTotal: ws.SlotsTotal, SlotsFree: ws.SlotsFree}
			ready = append(ready, c)
		}
	}
	if len(ready) > 0 {
		ready, _ = r.probe(ctx, ready)
	}
	return ready, out
}

// spawn starts a private worker for the model on a node that has the model
// and returns it with a func that stops it.
func (r *Router) spawn(ctx context.Context, snap *state.Snapshot, req Request) (*candidate, func(), error) {
	var nodes []*state.ModelRecord
	for _, m := range snap.Models {
		if m.Name == req.Model && m.Status == state.ModelReady && (req.Node == "" || m.Node == req.Node) && snap.Node(m.Node) != nil {
			nodes = append(nodes, m)
		}
	}
	if len(nodes) == 0 {
		where := "any node"
		if req.Node != "" {
			where = "node " + req.Node
		}
		return nil, nil, fmt.Errorf("--ephemeral needs model %q on %s, and the state has it on none: put the model in a pool on that node and run `rbee apply` (the pool may have replicas = 0)", req.Model, where)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Node < nodes[j].Node })
	m := nodes[0]
	n := snap.Node(m.Node)
	hc, err := r.hive(n)
	if err != nil {
		return nil, nil, err
	}
	tok, _ := r.token(n.Name)
	cfg := hiveapi.WorkerConfig{Model: req.Model, Slots: 1}
	for _, w := range snap.Workers {
		if w.Model == req.Model && w.Node == n.Name {
			cfg.Backend, cfg.Device, cfg.Threads = w.Backend, w.Device, w.Threads
			// ctx_size is the context of each slot, so one slot keeps it whole.
			cfg.CtxSize = w.CtxSize
			break
		}
	}
	id := "infer-" + randomHex(4)
	r.log().Info(fmt.Sprintf("starting an ephemeral worker for %s on node %s", req.Model, n.Name), "worker", id)
	stop := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		if err := hc.DeleteWorker(sctx, id); err != nil && !api.HasStatus(err, http.StatusNotFound) {
			r.log().Warn("could not stop the ephemeral worker", "node", n.Name, "worker", id, "err", err)
			return
		}
		r.log().Info("stopped the ephemeral worker on node "+n.Name, "worker", id)
	}
	st, err := hc.PutWorker(ctx, id, cfg, true)
	if err != nil {
		if api.FromServer(err) {
			stop() // the hive answered: undo whatever it started
		}
		return nil, nil, fmt.Errorf("start an ephemeral worker for %s on node %s: %w", req.Model, n.Name, err)
	}
	if !hiveapi.Ready(st.State) {
		stop()
		return nil, nil, fmt.Errorf("the ephemeral worker for %s on node %s is %s, not ready: %s", req.Model, n.Name, st.State, st.LastError)
	}
	c := &candidate{
		worker: Worker{ID: id, Node: n.Name, URL: st.URL, Ephemeral: true},
		token:  tok,
		ready:  workerapi.Ready{Ready: true, State: st.State, SlotsTotal: st.SlotsTotal, SlotsFree: st.SlotsFree},
	}
	return c, stop, nil
}

// noWorker explains why no worker could take the request, and what to apply.
func (r *Router) noWorker(snap *state.Snapshot, req Request, cands []*candidate, notes []string) error {
	var cat *Catalog
	var catErr error
	if r.Catalog != nil {
		c, err := r.Catalog()
		if err == nil {
			cat = &c
		}
		catErr = err
	}
	inState := false
	for _, w := range snap.Workers {
		inState = inState || w.Model == req.Model
	}
	for _, m := range snap.Models {
		inState = inState || m.Name == req.Model
	}
	_, inConfig := cat.models()[req.Model]
	if !inState && !inConfig {
		known := map[string]bool{}
		for m := range cat.models() {
			known[m] = true
		}
		for _, w := range snap.Workers {
			known[w.Model] = true
		}
		for _, m := range snap.Models {
			known[m.Name] = true
		}
		names := make([]string, 0, len(known))
		for m := range known {
			names = append(names, m)
		}
		sort.Strings(names)
		return &UnknownModelError{Model: req.Model, Known: names, ConfigErr: catErr}
	}
	e := &NoWorkerError{Model: req.Model, Node: req.Node, Pool: req.Pool, Notes: notes, ConfigKnown: cat != nil}
	if req.Node != "" && cat != nil && len(cat.Nodes) > 0 && !slices.Contains(cat.Nodes, req.Node) && snap.Node(req.Node) == nil {
		e.Nodes = cat.Nodes
		return e
	}
	if cat != nil {
		e.Pools = cat.Models[req.Model]
	} else {
		seen := map[string]bool{}
		for _, w := range snap.Workers {
			if w.Model == req.Model && !seen[w.Pool] {
				seen[w.Pool] = true
				e.Pools = append(e.Pools, w.Pool)
			}
		}
		sort.Strings(e.Pools)
	}
	e.Recorded = len(cands)
	return e
}

func (c *Catalog) models() map[string][]string {
	if c == nil {
		return nil
	}
	return c.Models
}

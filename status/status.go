// Package status gathers the live view of a fleet for `rbee status`: every
// node the state records is asked for its hive's live state (GET /v1/state)
// and every worker that hive runs for its readiness (GET /v1/ready) and its
// counters (GET /metrics), all in parallel under a short timeout. Nodes that
// do not answer are reported, not skipped.
package status

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/state"
)

// DefaultTimeout bounds each call to a hive or a worker.
const DefaultTimeout = 2 * time.Second

// StateUnknown is the state of a worker whose hive did not answer, and
// StateMissing that of a worker the state records but its hive does not run.
const (
	StateUnknown = "unknown"
	StateMissing = "missing"
)

// Report is the fleet at one moment.
type Report struct {
	Time  time.Time `json:"time"`
	Nodes []Node    `json:"nodes"`
	// RateNote says why tokens per second are missing, when they are.
	RateNote string `json:"rate_note,omitempty"`
	// Gateway is the fleet's gateway, when the configuration has one.
	Gateway *Gateway `json:"gateway,omitempty"`
}

// Node is one node and its hive.
type Node struct {
	Name      string   `json:"name"`
	HiveURL   string   `json:"hive_url"`
	Reachable bool     `json:"reachable"`
	Version   string   `json:"hive_version,omitempty"`
	Error     string   `json:"error,omitempty"` // why the hive did not answer
	Workers   []Worker `json:"workers"`
}

// Worker is one worker as its hive and the worker itself report it.
type Worker struct {
	Address    string `json:"address"` // worker.POOL[NODE/I], or the hive's id for a worker the state does not record
	ID         string `json:"id,omitempty"`
	Model      string `json:"model,omitempty"`
	Backend    string `json:"backend,omitempty"`
	State      string `json:"state"`
	SlotsBusy  int    `json:"slots_busy"`
	SlotsTotal int    `json:"slots_total"`
	Restarts   int    `json:"restarts"`
	URL        string `json:"url,omitempty"`
	Error      string `json:"error,omitempty"` // the hive's last error, or why the worker did not answer
	// TokensPerSecond is the generation rate over the last minute (or the
	// time since the first sample, when shorter); nil when unknown.
	TokensPerSecond *float64 `json:"tokens_per_second,omitempty"`
	RateWindow      string   `json:"rate_window,omitempty"` // the time the rate covers, e.g. "1m0s"
	// Generated is the worker's count of generated tokens (nil when its
	// /metrics did not answer): the basis of the rate.
	Generated *float64 `json:"generated_tokens,omitempty"`
}

// Gatherer asks the fleet.
type Gatherer struct {
	// Hive returns the client for a node's hive and the token of its workers.
	Hive func(n *state.NodeRecord) (*hiveapi.Client, error)
	// HTTP is used for every call; nil uses http.DefaultClient.
	HTTP *http.Client
	// Timeout bounds each call; 0 means DefaultTimeout.
	Timeout time.Duration
	// Rates turns successive counts into rates; nil leaves rates out.
	Rates *Rates
	// GatewayURL is the fleet gateway to ask for its queues ("" for none),
	// with GatewayKey as its API key.
	GatewayURL, GatewayKey string
}

// Gather returns the live report of every node in snap.
func (g *Gatherer) Gather(ctx context.Context, snap *state.Snapshot) Report {
	nodes := make([]*state.NodeRecord, 0, len(snap.Nodes))
	for _, n := range snap.Nodes {
		nodes = append(nodes, n)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	rep := Report{Time: time.Now(), Nodes: make([]Node, len(nodes))}
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep.Nodes[i] = g.node(ctx, snap, n)
		}()
	}
	if g.GatewayURL != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep.Gateway = g.gateway(ctx, g.GatewayURL, g.GatewayKey)
		}()
	}
	wg.Wait()
	if g.Rates != nil {
		for i := range rep.Nodes {
			for j := range rep.Nodes[i].Workers {
				g.Rates.Apply(rep.Time, &rep.Nodes[i].Workers[j])
			}
		}
	}
	rep.RateNote = rateNote(rep, g.Rates)
	return rep
}

func (g *Gatherer) timeout() time.Duration {
	if g.Timeout > 0 {
		return g.Timeout
	}
	return DefaultTimeout
}

// node asks one hive, then its workers.
func (g *Gatherer) node(ctx context.Context, snap *state.Snapshot, rec *state.NodeRecord) Node {
	n := Node{Name: rec.Name, HiveURL: rec.HiveURL}
	recorded := recordedWorkers(snap, rec.Name)
	hc, err := g.Hive(rec)
	var live hiveapi.State
	if err == nil {
		n.HiveURL = hc.BaseURL
		hc.HTTP = g.HTTP
		hctx, cancel := context.WithTimeout(ctx, g.timeout())
		live, err = hc.State(hctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %s", g.timeout())
		}
	}
	if err != nil {
		n.Error = err.Error()
		for _, w := range recorded {
			n.Workers = append(n.Workers, Worker{Address: w.Addr().String(), ID: w.ID, Model: w.Model, Backend: w.Backend,
				State: StateUnknown, SlotsTotal: w.Slots, Restarts: w.Restarts, URL: w.URL})
		}
		return n
	}
	n.Reachable, n.Version = true, live.Version
	n.Workers = make([]Worker, len(live.Workers))
	var wg sync.WaitGroup
	for i, ws := range live.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.Workers[i] = g.worker(ctx, hc.Token, ws, recorded)
		}()
	}
	wg.Wait()
	for _, w := range recorded {
		if !runs(live.Workers, w.ID) {
			n.Workers = append(n.Workers, Worker{Address: w.Addr().String(), ID: w.ID, Model: w.Model, Backend: w.Backend,
				State: StateMissing, SlotsTotal: w.Slots, Error: "the state records it but the hive does not run it: run `rbee plan`"})
		}
	}
	sort.SliceStable(n.Workers, func(i, j int) bool { return addrLess(n.Workers[i].Address, n.Workers[j].Address) })
	return n
}

// addrLess orders worker addresses by pool, node and index (so [n/2]
// comes before [n/10]); hive ids the state does not know come after them.
func addrLess(a, b string) bool {
	pa, ea := state.ParseAddr(a)
	pb, eb := state.ParseAddr(b)
	switch {
	case ea == nil && eb == nil:
		return pa.Less(pb)
	case (ea == nil) != (eb == nil):
		return ea == nil
	}
	return a < b
}

// worker combines what the hive says about a worker with what the worker says.
func (g *Gatherer) worker(ctx context.Context, token string, ws hiveapi.WorkerStatus, recorded []*state.WorkerRecord) Worker {
	w := Worker{Address: ws.ID, ID: ws.ID, Model: ws.Model, Backend: ws.Config.Normalized().Backend, State: ws.State,
		SlotsTotal: ws.SlotsTotal, SlotsBusy: ws.SlotsTotal - ws.SlotsFree, Restarts: ws.Restarts, URL: ws.URL, Error: ws.LastError}
	for _, r := range recorded {
		if r.ID == ws.ID {
			w.Address = r.Addr().String()
		}
	}
	if ws.URL == "" || !hiveapi.Ready(ws.State) && ws.State != hiveapi.StateLoading {
		return w
	}
	cl := workerapi.NewClient(ws.URL, token)
	cl.HTTP = g.HTTP
	var wg sync.WaitGroup
	var rd workerapi.Ready
	var rerr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		rctx, cancel := context.WithTimeout(ctx, g.timeout())
		defer cancel()
		rd, rerr = cl.Ready(rctx)
	}()
	mctx, cancel := context.WithTimeout(ctx, g.timeout())
	gen, merr := generatedTokens(mctx, g.HTTP, ws.URL, token)
	cancel()
	wg.Wait()
	if merr == nil {
		w.Generated = &gen
	}
	if rerr != nil {
		w.Error = "the worker did not answer /v1/ready: " + rerr.Error()
		if errors.Is(rerr, context.DeadlineExceeded) {
			w.Error = fmt.Sprintf("the worker did not answer /v1/ready within %s (hung or overloaded)", g.timeout())
		}
		return w
	}
	w.State, w.SlotsTotal, w.SlotsBusy = rd.State, rd.SlotsTotal, rd.SlotsTotal-rd.SlotsFree
	return w
}

func recordedWorkers(snap *state.Snapshot, node string) []*state.WorkerRecord {
	var out []*state.WorkerRecord
	for _, w := range snap.Workers {
		if w.Node == node {
			out = append(out, w)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr().Less(out[j].Addr()) })
	return out
}

func runs(live []hiveapi.WorkerStatus, id string) bool {
	for _, ws := range live {
		if ws.ID == id {
			return true
		}
	}
	return false
}

package canary

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/digest"
	"github.com/rbee-dev/rbee/state"
)

// DefaultTimeout bounds one canary request.
const DefaultTimeout = 30 * time.Second

// Fleet runs the canary on the workers of a refreshed snapshot.
type Fleet struct {
	Timeout time.Duration // per canary; 0: DefaultTimeout
	HTTP    *http.Client  // nil: the default client
	Log     *slog.Logger  // nil: discarded
}

// Measure runs the canary on every ready worker of live that has an SLO
// (one at a time on each node, so that they do not compete for one machine;
// nodes in parallel) and writes what each measured into its record. A
// worker without a free slot keeps its previous figures; one whose canary
// fails keeps them too, with the cause in Canary.Failed, and a warning is
// logged. recorded (may be nil) is the state before the refresh: the model
// files the workers were created on. token gives a node's hive token, which
// its workers accept too.
func (f *Fleet) Measure(ctx context.Context, live, recorded *state.Snapshot, token func(node string) (string, error), now time.Time) {
	byNode := map[string][]*state.WorkerRecord{}
	for _, w := range live.Workers {
		if w.SLO != (state.SLO{}) && w.URL != "" && (w.State == state.WorkerIdle || w.State == state.WorkerBusy) {
			byNode[w.Node] = append(byNode[w.Node], w)
		}
	}
	var wg sync.WaitGroup
	for node, workers := range byNode {
		tok, err := token(node)
		if err != nil {
			f.log().Warn("canary skipped: no hive token", "node", node, "err", err)
			continue
		}
		engine := ""
		if n := live.Node(node); n != nil {
			engine = digest.Short(n.BinarySHA256)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, w := range workers {
				f.one(ctx, w, tok, engine, modelSHA(recorded, live, w), now)
			}
		}()
	}
	wg.Wait()
}

func (f *Fleet) one(ctx context.Context, w *state.WorkerRecord, tok, binary, model string, now time.Time) {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cl := workerapi.NewClient(w.URL, tok)
	cl.HTTP = f.HTTP
	m, err := Run(cctx, cl)
	if err != nil {
		if !errors.Is(err, ErrNoSlot) {
			f.log().Warn("canary failed; the previous figures stay", "worker", w.Addr().String(), "err", err)
			w.Canary.Failed = err.Error()
		}
		return
	}
	w.Canary = Record(w.Canary, m, model, binary+" "+m.Engine, now)
}

func (f *Fleet) log() *slog.Logger {
	if f.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return f.Log
}

// modelSHA is the sha256 of the model file w was created on: as recorded
// before the refresh (a file replaced since then is what the fingerprint
// catches), else as refreshed.
func modelSHA(recorded, live *state.Snapshot, w *state.WorkerRecord) string {
	a := state.ModelAddr(w.Node, w.Model)
	for _, s := range []*state.Snapshot{recorded, live} {
		if s == nil {
			continue
		}
		if m := s.Models[a]; m != nil && m.ActualSHA256 != "" {
			return m.ActualSHA256
		}
	}
	return ""
}

// Record returns prev updated with m, measured on the given model file and
// engine build. The first fingerprint becomes the baseline, and so does a
// fingerprint taken on another model file or engine build: only on the same
// ones is a different output drift.
func Record(prev state.Canary, m Measure, model, engine string, now time.Time) state.Canary {
	c := prev
	c.Failed = ""
	c.At, c.DecodeTPS, c.TTFT, c.Fingerprint, c.Engine = now.UTC(), m.DecodeTPS, m.TTFT, m.Fingerprint, engine
	if c.Baseline == "" || c.BaselineModel != model || c.BaselineEngine != engine {
		c.Baseline, c.BaselineModel, c.BaselineEngine = m.Fingerprint, model, engine
	}
	return c
}

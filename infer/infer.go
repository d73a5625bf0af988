// Package infer routes one prompt to a ready worker of a model and streams
// the tokens back: it finds the model's workers in the state, asks each for
// its live readiness, sends the request to the least loaded one, retries on
// busy workers with backoff, and cancels the job on the worker when the
// caller gives up (Ctrl-C, timeout).
package infer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/planner"
	"github.com/rbee-dev/rbee/state"
)

// CodeBusy is the error code of a worker whose slots are all in use (HTTP 503).
const CodeBusy = workerapi.CodeBusy

// DefaultBackoff is how long Run waits before each new round of attempts
// when every ready worker of the model answered busy.
var DefaultBackoff = []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second}

// ErrInterrupted is the cancel cause the CLI uses for Ctrl-C; Run returns an
// error that wraps it after cancelling the job on the worker.
var ErrInterrupted = errors.New("interrupted")

// Request is one prompt for a model, with routing filters.
type Request struct {
	Model     string // model name as in the configuration
	Node      string // only workers on this node ("" = any)
	Pool      string // only workers of this pool ("" = any)
	Ephemeral bool   // with no ready worker, spawn a private one through a hive and stop it afterwards

	// Params is the body sent to the worker; Params.JobID is generated when empty.
	Params workerapi.InferenceRequest
}

// Router picks workers for prompts from the recorded state of the fleet.
type Router struct {
	// State is read once per Run (read only; no lock is taken).
	State state.Reader
	// Token returns the bearer token for the hive and the workers of a node
	// ("" when none is needed). Nil means no token.
	Token func(node string) (string, error)
	// Catalog describes the configured fleet, for error messages that say
	// what to apply. Nil, or an error, falls back to the state alone.
	Catalog func() (Catalog, error)
	// HTTP is the client for workers and hives; nil uses http.DefaultClient.
	HTTP *http.Client
	// Backoff overrides DefaultBackoff (tests).
	Backoff []time.Duration
	// ProbeTimeout bounds each GET /v1/ready; 0 means 3 s.
	ProbeTimeout time.Duration
	// StallTimeout is how long a running request may go without an event
	// from the worker (a token, or the start before the first) before the
	// job is cancelled and Run returns a *StallError; 0 means no limit.
	StallTimeout time.Duration
	// Log receives progress notes (busy retries, wake-ups, ephemeral workers); nil discards them.
	Log *slog.Logger
}

// Catalog is what the configuration says about models: every model name,
// and for each the pools that serve it.
type Catalog struct {
	Models map[string][]string // model → pools (may be empty)
	Nodes  []string            // every node the configuration declares
}

// Worker is where a request ran.
type Worker struct {
	Addr      state.Addr // worker.POOL[NODE/INDEX], or the zero Addr for an ephemeral worker
	ID        string     // the hive's worker id
	Node      string
	URL       string
	Ephemeral bool
	Gateway   bool // the request went through an OpenAI-compatible gateway at URL
}

// Name is the worker's address, "ephemeral worker ID on NODE", or "gateway".
func (w Worker) Name() string {
	if w.Gateway {
		return "gateway"
	}
	if w.Ephemeral {
		return fmt.Sprintf("ephemeral worker %s on %s", w.ID, w.Node)
	}
	return w.Addr.String()
}

// Outcome is a finished (or interrupted) request.
type Outcome struct {
	Worker     Worker
	JobID      string
	End        workerapi.Event // the worker's end event (statistics)
	Tokens     int             // token events received
	FirstToken time.Duration   // from the start of Run to the first token event
	Total      time.Duration   // from the start of Run to the end of the stream
	Attempts   int             // requests sent (more than 1 after busy answers)
}

// Sink receives the stream: a started event, every token, then the end event.
// An error from the sink stops the request (and cancels the job).
type Sink func(w Worker, ev workerapi.Event) error

// Run sends req to the least loaded ready worker of req.Model and passes the
// stream to sink. Busy workers are skipped for the others, and so are
// workers that are gone before the first event (connection refused); when
// all are busy Run waits 1, 2, then 4 s and tries again. When ctx ends while
// a job runs, or the worker stalls, the job is cancelled on the worker
// (DELETE /v1/inference/{id}) before Run returns. Errors: *NoWorkerError,
// *UnknownModelError, *BusyError, *GoneError, *StallError,
// *BrokenStreamError, or the worker's or the context's error.
func (r *Router) Run(ctx context.Context, req Request, sink Sink) (Outcome, error) {
	start := time.Now()
	if req.Params.JobID == "" {
		req.Params.JobID = NewJobID()
	}
	out := Outcome{JobID: req.Params.JobID}
	snap, err := r.State.Snapshot(ctx)
	if err != nil {
		return out, fmt.Errorf("read the state in %s: %w", r.State.Dir(), err)
	}
	cands := r.candidates(snap, req)
	var release func()
	backoff := r.Backoff
	if backoff == nil {
		backoff = DefaultBackoff
	}
	defer func() {
		if release != nil {
			release()
		}
	}()
	var busy []string
	for round := 0; ; round++ {
		ready, notes := r.probe(ctx, cands)
		if len(ready) == 0 && round == 0 {
			woken, wnotes := r.wake(ctx, snap, req, cands, notes)
			ready, notes = woken, append(notes, wnotes...)
			if len(ready) == 0 && req.Ephemeral {
				eph, rel, err := r.spawn(ctx, snap, req)
				if err != nil {
					return out, err
				}
				release = rel
				ready = []*candidate{eph}
			}
		}
		if len(ready) == 0 {
			if err := ctx.Err(); err != nil {
				return out, context.Cause(ctx)
			}
			if round > 0 && len(busy) > 0 {
				return out, &BusyError{Model: req.Model, Workers: busy, Waited: sum(backoff[:round]), Notes: notes}
			}
			return out, r.noWorker(snap, req, cands, notes)
		}
		var done bool
		busy, done, err = r.tryEach(ctx, ready, req, sink, start, &out)
		if done || err != nil {
			return out, err
		}
		if round >= len(backoff) {
			return out, &BusyError{Model: req.Model, Workers: busy, Waited: sum(backoff)}
		}
		r.log().Info(fmt.Sprintf("every worker of model %q is busy; trying again in %s", req.Model, backoff[round]))
		select {
		case <-ctx.Done():
			return out, context.Cause(ctx)
		case <-time.After(backoff[round]):
		}
	}
}

// tryEach sends the request to each ready worker in turn until one runs it
// (done), one fails (err), or every one answered busy (busy lists them) or
// was gone (a *NoAnswerError when none was busy).
func (r *Router) tryEach(ctx context.Context, ready []*candidate, req Request, sink Sink, start time.Time, out *Outcome) (busy []string, done bool, err error) {
	var gone []*GoneError
	for i, c := range ready {
		out.Worker = c.worker
		out.Attempts++
		err := r.stream(ctx, c, req, sink, start, out)
		if err == nil {
			out.Total = time.Since(start)
			return nil, true, nil
		}
		var g *GoneError
		isGone := errors.As(err, &g)
		if !isGone && !api.HasCode(err, CodeBusy) {
			return nil, false, err
		}
		// The job never ran there: an interrupt now has nothing to cancel.
		out.Worker = Worker{}
		more := ""
		if i < len(ready)-1 {
			more = "; trying another worker"
		}
		if isGone {
			gone = append(gone, g)
			r.log().Info(g.Error() + more)
			continue
		}
		busy = append(busy, c.worker.Name())
		r.log().Info(c.worker.Name() + " is busy" + more)
	}
	if len(busy) == 0 {
		return nil, false, &NoAnswerError{Model: req.Model, Gone: gone}
	}
	return busy, false, nil
}

func (r *Router) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

func (r *Router) token(node string) (string, error) {
	if r.Token == nil {
		return "", nil
	}
	return r.Token(node)
}

func (r *Router) hive(n *state.NodeRecord) (*hiveapi.Client, error) {
	tok, err := r.token(n.Name)
	if err != nil {
		return nil, err
	}
	url := n.HiveURL
	if url == "" { // a record written before HiveURL was
		port := n.HivePort
		if port == 0 {
			port = hiveapi.DefaultPort
		}
		url = planner.HiveURL(n.Connection == config.ConnectionLocal || n.Host == "", n.Host, port)
	}
	c := hiveapi.NewClient(url, tok)
	c.HTTP = r.HTTP
	return c, nil
}

// NewJobID returns a fresh job id ("infer-" and 16 hex digits).
func NewJobID() string { return "infer-" + randomHex(8) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func sum(ds []time.Duration) time.Duration {
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return t
}

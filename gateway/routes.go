package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rbee-dev/rbee/api"
)

// The gateway's endpoints.
const (
	PathChat        = "/v1/chat/completions"
	PathCompletions = "/v1/completions"
	PathEmbeddings  = "/v1/embeddings"
	PathModels      = "/v1/models"
)

func (s *Server) routes() {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathChat, s.serveInference(PathChat))
	mux.HandleFunc("POST "+PathCompletions, s.serveInference(PathCompletions))
	mux.HandleFunc("POST "+PathEmbeddings, s.serveInference(PathEmbeddings))
	mux.HandleFunc("GET "+PathModels, s.serveModels)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("no such endpoint: %s %s; the gateway serves POST %s, %s and %s, GET %s, /metrics and /health", r.Method, r.URL.Path, PathChat, PathCompletions, PathEmbeddings, PathModels), nil)
	})
	s.mux = mux
}

// inbound is what the gateway reads of a request body; the body itself goes
// to the worker unchanged.
type inbound struct {
	Model    string `json:"model"`
	Stream   bool   `json:"stream"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Prompt json.RawMessage `json:"prompt"`
}

// leading is the text whose leading blocks decide prefix affinity: the
// conversation so far, or the prompt.
func (in *inbound) leading() string {
	if len(in.Messages) == 0 {
		return string(in.Prompt)
	}
	var b strings.Builder
	for _, m := range in.Messages {
		b.WriteString(m.Role)
		b.WriteByte(0x1f)
		b.Write(m.Content)
		b.WriteByte(0x1e)
	}
	return b.String()
}

// serveInference is POST of one of the OpenAI endpoints.
func (s *Server) serveInference(path string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, api.MaxBodyBytes))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeError(w, http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE", fmt.Sprintf("request body is larger than %d bytes", api.MaxBodyBytes), nil)
			}
			return
		}
		var in inbound
		if err := json.Unmarshal(body, &in); err != nil {
			writeError(w, http.StatusBadRequest, "INVALID_JSON", "request body is not valid JSON for this endpoint: "+err.Error(), nil)
			return
		}
		if in.Model == "" {
			writeError(w, http.StatusBadRequest, "MISSING_FIELD", `"model" is required: name a pool or a model (GET /v1/models lists them)`, map[string]any{"param": "model"})
			return
		}
		select {
		case <-s.primed:
		case <-r.Context().Done():
			return
		}
		t, names, ok := s.fleet.resolve(in.Model)
		if !ok {
			s.metrics.requests.WithLabelValues(unknownLabel, outcomeUnknown).Inc()
			writeError(w, http.StatusNotFound, CodeUnknownModel, unknownMessage(in.Model, names), map[string]any{"param": "model", "known": names})
			return
		}
		var prefix []uint64
		if !s.opts.NoPrefixAffinity && path != PathEmbeddings {
			prefix = prefixHashes(in.leading())
		}
		up := upstream{path: path, body: body, stream: in.Stream, model: t.name, start: start}
		res := s.route(w, r, t, prefix, up)
		s.metrics.requests.WithLabelValues(t.name, res.outcome).Inc()
		if res.tokens > 0 {
			s.metrics.tokens.WithLabelValues(t.name).Add(float64(res.tokens))
		}
	}
}

func unknownMessage(name string, names []string) string {
	if len(names) == 0 {
		return fmt.Sprintf("the model %q does not exist: the fleet has no worker yet (run `rbee apply`)", name)
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return fmt.Sprintf("the model %q does not exist: name a pool or a model of the fleet: %s", name, strings.Join(q, ", "))
}

// route takes a slot (waiting in the queue if need be), forwards the
// request, and tries another worker while workers refuse it before the
// first byte.
func (s *Server) route(w http.ResponseWriter, r *http.Request, t target, prefix []uint64, up upstream) result {
	s.fleet.mu.Lock()
	attempts := 2*len(s.fleet.membersLocked(t)) + 2
	s.fleet.mu.Unlock()
	for i := 0; ; i++ {
		wk, waited, err := s.fleet.acquire(r.Context(), t, prefix, s.opts.Queue, s.opts.QueueTimeout)
		if waited > 0 || err == nil {
			s.metrics.queueWait.WithLabelValues(t.name).Observe(waited.Seconds())
		}
		switch {
		case errors.Is(err, errQueueFull):
			writeRetryable(w, CodeQueueFull, fmt.Sprintf("every slot of %q is busy and %d requests already wait for one; retry later, or add replicas or slots to the pool", t.name, s.opts.Queue), 1, map[string]any{"queue": s.opts.Queue})
			return result{outcome: outcomeQueueFull}
		case errors.Is(err, errQueueTimeout):
			writeError(w, http.StatusGatewayTimeout, CodeQueueTimeout, fmt.Sprintf("no slot of %q freed within the queue timeout of %s; retry later, or add replicas or slots to the pool", t.name, s.opts.QueueTimeout), map[string]any{"queue_timeout": s.opts.QueueTimeout.String()})
			return result{outcome: outcomeQueueTimeout}
		case err != nil:
			return result{outcome: outcomeCancelled}
		}
		res := s.forward(w, r, wk, up)
		s.fleet.release(wk)
		if res.retry == "" {
			return res
		}
		s.metrics.retries.WithLabelValues(t.name, res.retry).Inc()
		if i+1 >= attempts {
			writeRetryable(w, CodeNoWorker, fmt.Sprintf("every worker of %q refused the request (last: %s); retry shortly", t.name, res.retry), 1, nil)
			return result{outcome: outcomeNoWorker}
		}
	}
}

// model is one entry of GET /v1/models: OpenAI's fields, and rbee's.
type model struct {
	ID           string `json:"id"`
	Object       string `json:"object"`
	Created      int64  `json:"created"`
	OwnedBy      string `json:"owned_by"`
	Kind         string `json:"kind"` // pool | model
	ReadyWorkers int    `json:"ready_workers"`
	Workers      int    `json:"workers"`
}

// serveModels is GET /v1/models: every pool and every model that has one.
func (s *Server) serveModels(w http.ResponseWriter, r *http.Request) {
	select {
	case <-s.primed:
	case <-r.Context().Done():
		return
	}
	s.fleet.mu.Lock()
	entries := s.fleet.entriesLocked()
	s.fleet.mu.Unlock()
	data := make([]model, 0, len(entries))
	for _, e := range entries {
		data = append(data, model{ID: e.name, Object: "model", OwnedBy: "rbee", Kind: e.kind, ReadyWorkers: e.ready, Workers: e.workers})
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

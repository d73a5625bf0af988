package worker

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/engine"
)

// engine returns the loaded engine, or an *api.Error while loading, draining
// or stopping.
func (s *Server) engine() (*engine.Engine, error) {
	if s.stopping.Load() {
		return nil, errShuttingDown()
	}
	if s.isDraining() {
		return nil, errDraining()
	}
	eng := s.eng.Load()
	if eng == nil {
		return nil, api.Errorf(http.StatusServiceUnavailable, workerapi.CodeLoading, "the model is still loading (%.0f%%); retry when GET /v1/ready says ready", 100*s.loadProgress())
	}
	return eng, nil
}

func (s *Server) loadProgress() float64 { return floatFromUint64(s.progress.Load()) }

// readiness is the body of /v1/ready.
func (s *Server) readiness() workerapi.Ready {
	s.jobsMu.Lock()
	inFlight, draining := len(s.jobs), s.draining
	s.jobsMu.Unlock()
	r := workerapi.Ready{
		State:      workerapi.StateLoading,
		SlotsTotal: s.cfg.Slots,
		InFlight:   inFlight,
		Progress:   s.loadProgress(),
		CtxSize:    s.cfg.CtxSize,
		WorkerID:   s.cfg.WorkerID,
		Model:      modelName(s.cfg.ModelPath),
	}
	if eng := s.eng.Load(); eng != nil {
		r.SlotsTotal, r.SlotsFree = eng.Slots()
		r.CtxSize = eng.Info().CtxSize
		r.ChatTemplate = eng.Info().ChatTemplate
		b := eng.Info().Backend
		r.Runtime = workerapi.Runtime{Backend: b.Name, CPUVariant: b.CPUVariant, Device: b.Device, OffloadedLayers: b.OffloadedLayers}
		r.Ready = true
		r.State = workerapi.StateIdle
		if r.SlotsFree < r.SlotsTotal {
			r.State = workerapi.StateBusy
		}
	}
	if draining {
		r.Ready = false
		r.State = workerapi.StateDraining
	}
	if s.stopping.Load() {
		r.Ready = false
		r.State = workerapi.StateStopping
	}
	return r
}

// route is one endpoint: its path pattern, its method and its handler.
type route struct {
	pattern, method string
	h               http.HandlerFunc
}

func (s *Server) routes() {
	mux := http.NewServeMux()
	for _, rt := range []route{
		{"/health", http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
			api.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}},
		{"/v1/ready", http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
			api.WriteJSON(w, http.StatusOK, s.readiness())
		}},
		{"/v1/models", http.MethodGet, s.handleModels},
		{"/v1/inference", http.MethodPost, s.handleInference},
		{"/v1/inference/{id}", http.MethodDelete, s.handleCancel},
		{"/v1/completions", http.MethodPost, s.handleCompletions},
		{"/v1/chat/completions", http.MethodPost, s.handleChatCompletions},
		{"/v1/embeddings", http.MethodPost, s.handleEmbeddings},
		{"/v1/admin/drain", http.MethodPost, s.handleDrain},
		{"/v1/admin/shutdown", http.MethodPost, func(w http.ResponseWriter, r *http.Request) {
			api.WriteJSON(w, http.StatusAccepted, map[string]string{"status": "shutting down"})
			s.stopOnce.Do(func() { close(s.stopCh) })
		}},
		{"/metrics", http.MethodGet, s.metrics.handler().ServeHTTP},
	} {
		mux.HandleFunc(rt.pattern, onlyMethod(rt.method, rt.h))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		api.WriteError(w, api.Errorf(http.StatusNotFound, "NOT_FOUND", "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	s.mux = mux
}

// onlyMethod answers 405 with an Allow header to every other method (HEAD
// is allowed where GET is).
func onlyMethod(method string, h http.HandlerFunc) http.HandlerFunc {
	allow := method
	if method == http.MethodGet {
		allow = "GET, HEAD"
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && (method != http.MethodGet || r.Method != http.MethodHead) {
			w.Header().Set("Allow", allow)
			api.WriteError(w, api.Errorf(http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "%s %s is not supported; use %s", r.Method, r.URL.Path, method).
				WithDetails(map[string]any{"allow": allow}))
			return
		}
		h(w, r)
	}
}

// Handler is the worker's HTTP API without authentication (for tests and
// embedding; Run adds the bearer check).
func (s *Server) Handler() http.Handler { return s.mux }

// handleDrain is POST /v1/admin/drain: refuse new requests with 503
// DRAINING, let those in flight finish. It answers with the readiness.
func (s *Server) handleDrain(w http.ResponseWriter, r *http.Request) {
	s.jobsMu.Lock()
	was := s.draining
	s.draining = true
	s.jobsMu.Unlock()
	if !was {
		s.log.Info("draining: refusing new requests, letting running ones finish")
	}
	api.WriteJSON(w, http.StatusAccepted, s.readiness())
}

func (s *Server) isDraining() bool {
	s.jobsMu.Lock()
	defer s.jobsMu.Unlock()
	return s.draining
}

// handleCancel is DELETE /v1/inference/{id}.
func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.jobsMu.Lock()
	cancel, ok := s.jobs[id]
	s.jobsMu.Unlock()
	if !ok {
		api.WriteError(w, api.Errorf(http.StatusNotFound, "JOB_NOT_FOUND", "no running job %q on this worker (it may have finished)", id).WithDetails(map[string]any{"job_id": id}))
		return
	}
	cancel()
	s.log.Info("job cancelled by request", "job_id", id)
	api.WriteJSON(w, http.StatusOK, workerapi.CancelResponse{JobID: id, Cancelled: true})
}

// addJob registers a running job; it fails when the id is taken or the
// worker drains or stops.
func (s *Server) addJob(id string, cancel context.CancelFunc) error {
	s.jobsMu.Lock()
	defer s.jobsMu.Unlock()
	if _, taken := s.jobs[id]; taken {
		return api.Errorf(http.StatusConflict, "JOB_EXISTS", "job %q is already running on this worker; pick another job_id", id).WithDetails(map[string]any{"field": "job_id"})
	}
	if s.stopping.Load() {
		return errShuttingDown()
	}
	if s.draining {
		return errDraining()
	}
	s.jobs[id] = cancel
	return nil
}

func (s *Server) removeJob(id string) {
	s.jobsMu.Lock()
	delete(s.jobs, id)
	s.jobsMu.Unlock()
}

// errShuttingDown is the answer to a request that arrives after shutdown
// began (a new *api.Error each time: callers may add details).
func errShuttingDown() *api.Error {
	return api.Errorf(http.StatusServiceUnavailable, workerapi.CodeShuttingDown, "the worker is shutting down; send the request to another worker")
}

// errDraining is the answer to a request that arrives while draining.
func errDraining() *api.Error {
	return api.Errorf(http.StatusServiceUnavailable, workerapi.CodeDraining, "the worker is draining: it finishes the requests it has and takes no new ones; send the request to another worker")
}

func modelName(path string) string {
	return strings.TrimSuffix(filepath.Base(path), ".gguf")
}

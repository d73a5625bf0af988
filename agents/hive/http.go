package hive

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/agents/hive/modelstore"
	"github.com/rbee-dev/rbee/api"
)

// Handler is the hive's HTTP API (see the package hiveapi for the types).
// Every route needs the bearer token when the hive has one, except the
// workers' ready callback, which is only a hint to poll the worker.
func (h *Hive) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern string, methods map[string]http.HandlerFunc) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			f, ok := methods[r.Method]
			if !ok {
				allowed := make([]string, 0, len(methods))
				for m := range methods {
					allowed = append(allowed, m)
				}
				sort.Strings(allowed)
				w.Header().Set("Allow", strings.Join(allowed, ", "))
				api.WriteError(w, api.Errorf(http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "%s is not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allowed, ", ")))
				return
			}
			f(w, r)
		})
	}
	route("/v1/health", map[string]http.HandlerFunc{http.MethodGet: h.getHealth})
	route("/v1/state", map[string]http.HandlerFunc{http.MethodGet: h.getState})
	route("/v1/models", map[string]http.HandlerFunc{http.MethodGet: h.listModels})
	route("/v1/models/{name}", map[string]http.HandlerFunc{http.MethodGet: h.getModel, http.MethodPut: h.putModel, http.MethodDelete: h.deleteModel})
	route("/v1/workers", map[string]http.HandlerFunc{http.MethodGet: h.listWorkers})
	route("/v1/workers/{id}", map[string]http.HandlerFunc{http.MethodGet: h.getWorker, http.MethodPut: h.putWorker, http.MethodDelete: h.deleteWorker})
	route("/v1/workers/{id}/logs", map[string]http.HandlerFunc{http.MethodGet: h.workerLogs})
	route("/metrics", map[string]http.HandlerFunc{http.MethodGet: h.metrics.handler().ServeHTTP})
	route("/v1/workers/{id}/ready", map[string]http.HandlerFunc{http.MethodPost: h.workerReady})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		api.WriteError(w, api.Errorf(http.StatusNotFound, "NOT_FOUND", "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	// A worker reports ready without the token (it may not have it).
	return recoverer(h, api.RequireBearer(h.cfg.Token, mux, "POST /v1/workers/{id}/ready"))
}

// recoverer turns a panic in a handler into a logged 500 instead of a dropped connection.
func recoverer(h *Hive, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				h.log.Error("panic in a request handler", "method", r.Method, "path", r.URL.Path, "panic", v)
				api.WriteError(w, api.Errorf(http.StatusInternalServerError, "INTERNAL", "internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (h *Hive) getHealth(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, hiveapi.Health{Status: "ok", Version: h.cfg.Version, CPUVariant: workerCPUVariant()})
}

func (h *Hive) getState(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, h.State(r.Context()))
}

func (h *Hive) listModels(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, h.store.List())
}

// pathName reads and validates a {name}/{id} path value.
func pathName(r *http.Request, key, kind string) (string, error) {
	v := r.PathValue(key)
	if err := hiveapi.ValidName(kind, v); err != nil {
		return "", api.Errorf(http.StatusBadRequest, "INVALID_NAME", "%v", err)
	}
	return v, nil
}

func (h *Hive) getModel(w http.ResponseWriter, r *http.Request) {
	name, err := pathName(r, "name", "model name")
	if err != nil {
		api.WriteError(w, err)
		return
	}
	m, ok := h.store.Get(name)
	if !ok {
		api.WriteError(w, api.Errorf(http.StatusNotFound, "MODEL_NOT_FOUND", "model %q is not in this hive's catalog", name))
		return
	}
	api.WriteJSON(w, http.StatusOK, m)
}

// putModel provisions a model. With "Accept: text/event-stream" it streams
// progress events and ends with a done or error event; otherwise it blocks
// and answers the catalog entry.
func (h *Hive) putModel(w http.ResponseWriter, r *http.Request) {
	name, err := pathName(r, "name", "model name")
	if err != nil {
		api.WriteError(w, err)
		return
	}
	var spec hiveapi.ModelSpec
	if err := api.DecodeJSON(w, r, &spec); err != nil {
		api.WriteError(w, err)
		return
	}
	if _, err := modelstore.ParseRef(spec); err != nil {
		api.WriteError(w, api.Errorf(http.StatusBadRequest, "INVALID_REF", "%v", err).WithDetails(map[string]any{"allowed": modelstore.AllowedForms}))
		return
	}
	if !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		m, err := h.store.Provision(r.Context(), name, spec, nil)
		if err != nil {
			api.WriteError(w, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, m)
		return
	}
	sse := api.NewSSEWriter(w)
	send := func(ev hiveapi.Event) { sse.JSON(ev) }
	progress := make(chan hiveapi.Progress, 1)
	type result struct {
		m   hiveapi.Model
		err error
	}
	done := make(chan result, 1)
	go func() {
		m, err := h.store.Provision(r.Context(), name, spec, func(p hiveapi.Progress) {
			select { // keep only the newest event when the client is slow
			case <-progress:
			default:
			}
			progress <- p
		})
		done <- result{m, err}
	}()
	for {
		select {
		case p := <-progress:
			send(hiveapi.Event{Type: hiveapi.EventProgress, Bytes: p.Bytes, Total: p.Total, Rate: p.Rate})
		case res := <-done:
			select {
			case p := <-progress:
				send(hiveapi.Event{Type: hiveapi.EventProgress, Bytes: p.Bytes, Total: p.Total, Rate: p.Rate})
			default:
			}
			if res.err != nil {
				e := asAPIError(res.err)
				send(hiveapi.Event{Type: hiveapi.EventError, Error: &hiveapi.ErrorBody{Status: e.Status, Code: e.Code, Message: e.Message, Details: e.Details}})
				return
			}
			send(hiveapi.Event{Type: hiveapi.EventDone, Model: &res.m})
			return
		}
	}
}

func asAPIError(err error) *api.Error {
	if e, ok := errors.AsType[*api.Error](err); ok {
		return e
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return api.Errorf(499, "CANCELLED", "%v", err)
	}
	return api.Errorf(http.StatusInternalServerError, "INTERNAL", "%v", err)
}

func (h *Hive) deleteModel(w http.ResponseWriter, r *http.Request) {
	name, err := pathName(r, "name", "model name")
	if err != nil {
		api.WriteError(w, err)
		return
	}
	if err := h.DeleteModel(name); err != nil {
		api.WriteError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Hive) listWorkers(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, h.workerStatuses(r.Context()))
}

func (h *Hive) worker(r *http.Request) (*supervised, error) {
	id, err := pathName(r, "id", "worker id")
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	wk, ok := h.workers[id]
	if !ok {
		return nil, api.Errorf(http.StatusNotFound, "WORKER_NOT_FOUND", "this hive runs no worker %q", id)
	}
	return wk, nil
}

func (h *Hive) getWorker(w http.ResponseWriter, r *http.Request) {
	wk, err := h.worker(r)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	wk.refresh(r.Context())
	api.WriteJSON(w, http.StatusOK, wk.status())
}

// putWorker creates, keeps or replaces a worker, keyed by config hash.
func (h *Hive) putWorker(w http.ResponseWriter, r *http.Request) {
	id, err := pathName(r, "id", "worker id")
	if err != nil {
		api.WriteError(w, err)
		return
	}
	var cfg hiveapi.WorkerConfig
	if err := api.DecodeJSON(w, r, &cfg); err != nil {
		api.WriteError(w, err)
		return
	}
	cfg = cfg.Normalized()
	if err := validateWorker(id, cfg); err != nil {
		api.WriteError(w, err)
		return
	}
	wait := true
	if v := r.URL.Query().Get("wait"); v != "" {
		if wait, err = strconv.ParseBool(v); err != nil {
			api.WriteError(w, api.Errorf(http.StatusBadRequest, "INVALID_FIELD", "wait=%q: use true or false", v))
			return
		}
	}
	wk, status, err := h.ensureWorker(r.Context(), id, cfg)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	if !wait {
		api.WriteJSON(w, status, wk.status())
		return
	}
	st, err := wk.waitReady(r.Context())
	if err != nil {
		api.WriteError(w, err)
		return
	}
	api.WriteJSON(w, status, st)
}

// ensureWorker applies a worker config: the same config hash keeps the
// worker (reviving it if it failed or idled out), another hash replaces it.
func (h *Hive) ensureWorker(ctx context.Context, id string, cfg hiveapi.WorkerConfig) (*supervised, int, error) {
	m, ok := h.store.Get(cfg.Model)
	if !ok {
		return nil, 0, api.Errorf(http.StatusNotFound, "MODEL_NOT_FOUND",
			"model %q is not in this hive's catalog; provision it first (PUT /v1/models/%s)", cfg.Model, cfg.Model)
	}
	h.opMu.Lock()
	defer h.opMu.Unlock()
	if h.closing {
		return nil, 0, api.Errorf(http.StatusServiceUnavailable, "SHUTTING_DOWN", "the hive is shutting down; try again when it is back")
	}
	hash := hiveapi.ConfigHash(cfg)
	h.mu.Lock()
	old := h.workers[id]
	h.mu.Unlock()
	if old != nil && old.deleting {
		return nil, 0, api.Errorf(http.StatusConflict, "WORKER_STOPPING", "worker %q is being deleted (draining its requests); put it again once the delete has finished", id)
	}
	if old != nil && old.hash == hash {
		if old.setLive(cfg) {
			h.mu.Lock()
			err := h.saveIntentionsLocked()
			h.mu.Unlock()
			if err != nil {
				return nil, 0, fmt.Errorf("persist the worker list: %w", err)
			}
		}
		old.start() // no-op while it runs
		return old, http.StatusOK, nil
	}
	if err := h.checkPort(id, cfg.Port); err != nil {
		return nil, 0, err
	}
	if err := preflight(cfg, m, h.probe.Resources(ctx)); err != nil {
		if e, ok := errors.AsType[*api.Error](err); ok {
			h.metrics.preflights.WithLabelValues(e.Code).Inc()
		}
		return nil, 0, err
	}
	if old != nil {
		h.log.Info("replacing worker: its configuration changed", "worker", id, "old_hash", old.hash, "new_hash", hash)
		old.stopAndWait()
	}
	wk := newSupervised(h, id, cfg, h.logsFor(id))
	h.ports.fix(id, cfg.Port)
	h.mu.Lock()
	h.workers[id] = wk
	err := h.saveIntentionsLocked()
	h.mu.Unlock()
	if err != nil {
		return nil, 0, fmt.Errorf("persist the worker list: %w", err)
	}
	wk.start()
	return wk, http.StatusCreated, nil
}

// checkPort refuses a fixed worker port that is taken (409 PORT_IN_USE),
// naming who holds it: the hive never falls back to another port silently.
func (h *Hive) checkPort(id string, port int) error {
	if port == 0 {
		return nil
	}
	why := h.ports.busy(id, port)
	if port == h.apiPort {
		why = "it is this hive's own API port; choose another port for the pool"
	}
	if why == "" {
		return nil
	}
	return api.Errorf(http.StatusConflict, "PORT_IN_USE", "worker %s cannot listen on port %d: %s", id, port, why).
		WithDetails(map[string]any{"port": port})
}

func (h *Hive) saveIntentionsLocked() error {
	ws := make([]intention, 0, len(h.workers))
	for id, wk := range h.workers {
		ws = append(ws, intention{ID: id, Config: wk.config()})
	}
	return saveIntentions(h.cfg.DataDir, ws)
}

func (h *Hive) deleteWorker(w http.ResponseWriter, r *http.Request) {
	wk, err := h.worker(r)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	if err := h.deleteWorkerRun(wk); err != nil {
		api.WriteError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deleteWorkerRun stops a worker (draining it first) and forgets it. The
// drain runs outside opMu, so other workers can be changed meanwhile; the
// worker stays listed, as draining, until it has stopped.
func (h *Hive) deleteWorkerRun(wk *supervised) error {
	h.opMu.Lock()
	wk.deleting = true
	h.opMu.Unlock()
	wk.stopAndWait()
	h.opMu.Lock()
	defer h.opMu.Unlock()
	h.mu.Lock()
	if h.workers[wk.id] == wk {
		delete(h.workers, wk.id)
		h.ports.fix(wk.id, 0)
	}
	err := h.saveIntentionsLocked()
	h.mu.Unlock()
	if err != nil {
		return fmt.Errorf("persist the worker list: %w", err)
	}
	h.log.Info("worker deleted", "worker", wk.id)
	return nil
}

func (h *Hive) workerLogs(w http.ResponseWriter, r *http.Request) {
	id, err := pathName(r, "id", "worker id")
	if err != nil {
		api.WriteError(w, err)
		return
	}
	n := 100
	if v := r.URL.Query().Get("lines"); v != "" {
		n, err = strconv.Atoi(v)
		if err != nil || n < 1 || n > logLines {
			api.WriteError(w, api.Errorf(http.StatusBadRequest, "INVALID_FIELD", "lines=%q: use a number from 1 to %d", v, logLines))
			return
		}
	}
	h.mu.Lock()
	ring, ok := h.logRing[id]
	h.mu.Unlock()
	if !ok {
		api.WriteError(w, api.Errorf(http.StatusNotFound, "WORKER_NOT_FOUND", "this hive has no logs of worker %q", id))
		return
	}
	lines := ring.Tail(n)
	if lines == nil {
		lines = []string{}
	}
	api.WriteJSON(w, http.StatusOK, hiveapi.WorkerLogs{ID: id, Lines: lines})
}

// workerReady is the workers' callback: a hint to poll /v1/ready now.
func (h *Hive) workerReady(w http.ResponseWriter, r *http.Request) {
	wk, err := h.worker(r)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	wk.poke()
	w.WriteHeader(http.StatusNoContent)
}

func sortStatuses(s []hiveapi.WorkerStatus) {
	sort.Slice(s, func(i, j int) bool { return s[i].ID < s[j].ID })
}

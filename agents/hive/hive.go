// Package hive is rbee's node agent: an HTTP API that provisions models
// (through modelstore), checks resources before a spawn, starts `rbee worker`
// processes and supervises them (readiness, health checks, restarts with
// backoff, crash loops, idle stop), persists which workers it is meant to
// run, and reports the node's live state.
package hive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/backoff"
	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/agents/hive/modelstore"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/digest"
	"github.com/rbee-dev/rbee/engine/cpu"
	"golang.org/x/sys/unix"
)

// Defaults of Config.
const (
	DefaultHealthInterval = 30 * time.Second
	DefaultStopGrace      = 5 * time.Second
	// ShutdownDrainMax bounds the drain of each worker when the hive itself
	// stops, so that drain, grace and kill fit in the 30 s a service manager
	// gives a stopping hive.
	ShutdownDrainMax = 20 * time.Second
)

// Config configures a Hive.
type Config struct {
	Listen          string        // host:port the API binds; workers bind the same host
	DataDir         string        // catalog, models, intentions, worker logs
	Token           string        // bearer token ("" only on loopback)
	TokenFile       string        // passed to workers with --token-file
	HealthInterval  time.Duration // 0: DefaultHealthInterval
	StallTimeout    time.Duration // download stall timeout; 0: 60 s
	StopGrace       time.Duration // SIGTERM → SIGKILL delay for workers; 0: 5 s
	FirstWorkerPort int           // 0: 8001
	Version         string
	Executable      string   // the rbee binary to spawn workers with; "": os.Executable
	Env             []string // workers' environment; nil: the hive's own
	FileRoots       []string // the only folders file:// models may come from; empty: anywhere
	Log             *slog.Logger
}

// Hive is one node agent.
type Hive struct {
	cfg       Config
	log       *slog.Logger
	store     *modelstore.Store
	probe     Probe
	exe       string
	exeSHA256 string
	env       []string
	startedAt time.Time
	ports     *portPool
	restart   backoff.Policy // delay before restarting a crashed worker
	metrics   *metrics

	bindHost      string // what workers bind (--host)
	pollHost      string // how the hive reaches workers and itself
	advertiseHost string // the host in worker URLs
	apiPort       int

	opMu    sync.Mutex // serializes worker PUT/DELETE
	closing bool       // set under opMu by Shutdown: no new workers
	mu      sync.Mutex
	workers map[string]*supervised
	logRing map[string]*logRing
}

// check validates cfg, fills in its defaults and returns the host and port
// of its listen address.
func (cfg *Config) check() (host string, port int, err error) {
	if cfg.DataDir == "" {
		return "", 0, errors.New("a data dir is required: pass --data-dir DIR")
	}
	if err := api.CheckListen(cfg.Listen, cfg.Token); err != nil {
		return "", 0, err
	}
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return "", 0, fmt.Errorf("--listen %q is not host:port: %w", cfg.Listen, err)
	}
	port, err = strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("--listen %q: bad port", cfg.Listen)
	}
	for _, root := range cfg.FileRoots {
		if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
			return "", 0, fmt.Errorf("--file-roots %q is not a folder on this node: file:// models are read only from existing folders", root)
		}
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = DefaultHealthInterval
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = DefaultStopGrace
	}
	if cfg.FirstWorkerPort == 0 {
		cfg.FirstWorkerPort = DefaultFirstWorkerPort
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Env == nil {
		cfg.Env = os.Environ()
	}
	return host, port, nil
}

// New opens the data dir (catalog and intentions) and prepares a hive; it
// starts no worker until Start.
func New(cfg Config) (*Hive, error) {
	host, port, err := cfg.check()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cfg.DataDir = abs
	if err := os.MkdirAll(filepath.Join(abs, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("create the data dir %s: %w", abs, err)
	}
	h := &Hive{cfg: cfg, log: cfg.Log, env: cfg.Env, startedAt: time.Now().UTC().Truncate(time.Second), apiPort: port,
		workers: map[string]*supervised{}, logRing: map[string]*logRing{}, probe: Probe{DataDir: abs}, restart: restartPolicy,
		metrics: newMetrics()}
	h.exe = cfg.Executable
	if h.exe == "" {
		if h.exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("find the rbee executable to spawn workers with: %w", err)
		}
	}
	// The checksum covers the ggml libraries beside the executable, as the
	// applier's does, so a changed library is drift like a changed binary.
	h.exeSHA256, err = digest.WithLibraries(h.exe, filepath.Join(filepath.Dir(h.exe), cpu.LibraryFolder))
	if err != nil {
		return nil, fmt.Errorf("checksum the rbee executable: %w", err)
	}
	h.bindHost, h.pollHost, h.advertiseHost = host, host, host
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		h.bindHost = "0.0.0.0"
		h.pollHost = "127.0.0.1"
		h.advertiseHost, _ = os.Hostname()
	}
	// Processes a worker leaves behind are reparented to the hive rather
	// than to init, so the hive can reap them when it stops the worker.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		h.log.Warn("cannot become a child subreaper; orphans of workers go to init", "err", err)
	}
	h.ports = newPortPool(h.bindHost, cfg.FirstWorkerPort, h.log)
	h.store, err = modelstore.Open(abs, modelstore.Options{
		Downloader: &modelstore.Downloader{StallTimeout: cfg.StallTimeout, Log: h.log},
		HFEndpoint: lookupEnv(cfg.Env, "HF_ENDPOINT"),
		HFToken:    lookupEnv(cfg.Env, "HF_TOKEN"),
		Log:        h.log,
		FileRoots:  cfg.FileRoots,
	})
	if err != nil {
		return nil, err
	}
	h.metrics.register(h)
	intents, err := loadIntentions(abs)
	if err != nil {
		return nil, err
	}
	h.restore(intents)
	return h, nil
}

// restore adopts the workers an earlier run was meant to run (started by Start).
func (h *Hive) restore(intents []intention) {
	for _, in := range intents {
		cfg := in.Config.Normalized()
		if validateWorker(in.ID, cfg) != nil {
			h.log.Warn("ignoring an invalid persisted worker", "worker", in.ID)
			continue
		}
		h.workers[in.ID] = newSupervised(h, in.ID, cfg, h.logsFor(in.ID))
		h.ports.fix(in.ID, cfg.Port)
	}
}

// lookupEnv returns the last value of key in an environment list.
func lookupEnv(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// logsFor returns the log ring of worker id, shared across its replacements.
func (h *Hive) logsFor(id string) *logRing {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r, ok := h.logRing[id]; ok {
		return r
	}
	r := newLogRing(logLines, filepath.Join(h.cfg.DataDir, "logs", id+".log"))
	h.logRing[id] = r
	return r
}

func (h *Hive) callbackURL(id string) string {
	return "http://" + net.JoinHostPort(h.pollHost, strconv.Itoa(h.apiPort)) + "/v1/workers/" + id + "/ready"
}

// Start brings up the workers persisted by an earlier run.
func (h *Hive) Start() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, w := range h.workers {
		h.log.Info("restoring worker", "worker", id, "model", w.cfg.Model)
		w.start()
	}
}

// Shutdown stops every worker in parallel (a drain of at most
// ShutdownDrainMax, SIGTERM, SIGKILL after the grace period) and cancels
// provisioning, waiting for it at most modelstore.DefaultCloseWait. Intentions stay on disk for the next start.
func (h *Hive) Shutdown() {
	h.opMu.Lock()
	h.closing = true
	h.opMu.Unlock()
	h.mu.Lock()
	ws := make([]*supervised, 0, len(h.workers))
	for _, w := range h.workers {
		ws = append(ws, w)
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); h.store.Close() }() // bounded, alongside the workers
	for _, w := range ws {
		wg.Add(1)
		go func() { defer wg.Done(); w.stopWithin(min(w.drainTimeout(), ShutdownDrainMax)) }()
	}
	wg.Wait()
	h.mu.Lock()
	for _, r := range h.logRing {
		r.Close()
	}
	h.mu.Unlock()
}

// Run serves the API on cfg.Listen until ctx ends, then shuts down: the
// listener closes, every worker is stopped, and Run returns nil.
func Run(ctx context.Context, cfg Config) error {
	h, err := New(cfg)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		h.store.Close()
		return fmt.Errorf("listen on %s: %w (is another hive running there?)", cfg.Listen, err)
	}
	h.apiPort = l.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: h.Handler(), ReadHeaderTimeout: 10 * time.Second}
	auth := "none (loopback)"
	if cfg.Token != "" {
		auth = "bearer token " + api.Fingerprint(cfg.Token)
	}
	h.log.Info("hive listening", "addr", l.Addr().String(), "data_dir", h.cfg.DataDir, "auth", auth, "version", cfg.Version)
	h.Start()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		h.Shutdown()
		return err
	}
	h.log.Info("shutting down: stopping workers")
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	h.Shutdown()
	h.log.Info("hive stopped")
	return nil
}

// DeleteModel removes a model from the catalog (and its file, if the hive
// made it). A model that a worker the hive is meant to run uses is refused
// with 409 MODEL_IN_USE naming the workers: delete them first.
func (h *Hive) DeleteModel(name string) error {
	h.opMu.Lock()
	defer h.opMu.Unlock()
	var users []string
	h.mu.Lock()
	for id, wk := range h.workers {
		if wk.cfg.Model == name {
			users = append(users, id)
		}
	}
	h.mu.Unlock()
	if len(users) > 0 {
		slices.Sort(users)
		return api.Errorf(http.StatusConflict, "MODEL_IN_USE", "model %q is used by workers %s; delete them first", name, strings.Join(users, ", ")).
			WithDetails(map[string]any{"workers": users})
	}
	return h.store.Delete(name)
}

// State is the live state of the node.
func (h *Hive) State(ctx context.Context) hiveapi.State {
	return hiveapi.State{
		Version:      h.cfg.Version,
		BinarySHA256: h.exeSHA256,
		StartedAt:    h.startedAt,
		Resources:    h.probe.Resources(ctx),
		Models:       h.store.List(),
		Workers:      h.workerStatuses(ctx),
	}
}

// workerStatuses refreshes ready workers in parallel and lists every worker by id.
func (h *Hive) workerStatuses(ctx context.Context) []hiveapi.WorkerStatus {
	h.mu.Lock()
	ws := make([]*supervised, 0, len(h.workers))
	for _, w := range h.workers {
		ws = append(ws, w)
	}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() { defer wg.Done(); w.refresh(ctx) }()
	}
	wg.Wait()
	out := make([]hiveapi.WorkerStatus, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.status())
	}
	sortStatuses(out)
	return out
}

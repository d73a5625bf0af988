// Package worker is the HTTP server of one llama.cpp worker process: it loads
// a model in the background (answering /v1/ready with progress meanwhile),
// streams tokens over native SSE and OpenAI-compatible endpoints, shares the
// model's slots between concurrent requests, cancels jobs, exposes Prometheus
// metrics and stops cleanly. The wire types are in workerapi.
package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/engine"
	"github.com/rbee-dev/rbee/engine/cpu"
	"github.com/rbee-dev/rbee/spec"
)

// MinPort and MaxPort bound the port a worker may listen on; ports below
// MinPort are reserved for system services, and 0 ("any free port") is
// refused because the hive always assigns an explicit port.
const (
	MinPort = workerapi.MinPort
	MaxPort = workerapi.MaxPort
)

// Config is how a worker runs. ModelPath and Port are required.
type Config struct {
	ModelPath   string
	Host        string // listen address; default 127.0.0.1
	Port        int
	Slots       int           // parallel sequences; default 4
	CtxSize     int           // tokens per slot; default 2048
	Threads     int           // 0 = physical cores
	WorkerID    string        // reported by /v1/ready and the callback
	Token       string        // bearer token; required unless Host is loopback
	CallbackURL string        // POSTed {"worker_id","url","state":"ready"} once loaded
	LoadTimeout time.Duration // default 5m
	LoadDelay   time.Duration // wait before loading; a test hook that makes the loading state observable
	Logger      *slog.Logger  // default slog.Default()

	FlashAttention bool   // use flash attention
	KVCacheType    string // KV cache element type: f16 (default), q8_0 or q4_0
	ChatTemplate   string // chat template name overriding the model's own; "" = the model's
	Embeddings     bool   // serve POST /v1/embeddings

	Backend   string // what the layers compute on: cpu (default) or cuda
	Device    int    // the GPU of backend cuda (the n-th CUDA device)
	GPULayers int    // layers offloaded to the GPU with backend cuda; 0 = all
}

// KVCacheTypes are the values Config.KVCacheType accepts.
var KVCacheTypes = engine.KVCacheTypes

// ErrLoad marks a model load that fails the same way every time (a file
// llama.cpp refuses, invalid options); starting the worker again does not
// help. A missing file is not one: the hive may provide it again.
var ErrLoad = engine.ErrLoad

// Server is one worker. Create it with New, then call Run.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	mux     *http.ServeMux

	progress atomic.Uint64 // float64 bits, 0..1 while loading
	eng      atomic.Pointer[engine.Engine]
	stopping atomic.Bool
	stopOnce sync.Once
	stopCh   chan struct{}          // closed by an admin shutdown request
	sha256   atomic.Pointer[string] // the model file's digest, once hashed
	started  time.Time

	jobsMu   sync.Mutex
	jobs     map[string]context.CancelFunc
	draining bool // guarded by jobsMu: refuse new jobs, let running ones finish
}

// New checks cfg and prepares a server; nothing listens yet.
func New(cfg Config) (*Server, error) {
	if cfg.ModelPath == "" {
		return nil, errors.New("--model PATH is required: the GGUF file to serve")
	}
	if cfg.Port < MinPort || cfg.Port > MaxPort {
		return nil, fmt.Errorf("--port must be %d-%d, got %d: ports below %d are reserved for system services", MinPort, MaxPort, cfg.Port, MinPort)
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Slots <= 0 {
		cfg.Slots = spec.DefaultSlots
	}
	if cfg.CtxSize <= 0 {
		cfg.CtxSize = spec.DefaultCtxSize
	}
	if cfg.Threads <= 0 {
		cfg.Threads = cpu.PhysicalCores()
	}
	if cfg.LoadTimeout <= 0 {
		cfg.LoadTimeout = spec.DefaultLoadTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.KVCacheType == "" {
		cfg.KVCacheType = KVCacheTypes[0]
	}
	if cfg.WorkerID == "" {
		cfg.WorkerID = "worker-" + strconv.Itoa(cfg.Port)
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		stopCh:  make(chan struct{}),
		jobs:    map[string]context.CancelFunc{},
		started: time.Now(),
	}
	s.metrics = newMetrics(s)
	s.routes()
	return s, nil
}

// Addr is the host:port the worker listens on.
func (s *Server) Addr() string {
	return net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
}

// URL is how a local client reaches the worker (an unspecified bind address
// becomes 127.0.0.1).
func (s *Server) URL() string {
	host := s.cfg.Host
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(s.cfg.Port))
}

// Run listens, loads the model, serves until ctx ends or an admin shutdown
// arrives, then stops accepting, cancels running jobs and frees the model.
// It returns nil after a clean stop and an error when the CPU is too old,
// the address is refused or busy, or the model fails to load in time.
func (s *Server) Run(ctx context.Context) error {
	if err := cpu.Check(); err != nil {
		return err
	}
	if err := api.CheckListen(s.Addr(), s.cfg.Token); err != nil {
		return err
	}
	if _, err := os.Stat(s.cfg.ModelPath); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("model file %s does not exist: pass a GGUF file to --model (`rbee model synth --preset tiny --out tiny.gguf` makes a small one)", s.cfg.ModelPath)
	} else if err != nil {
		return fmt.Errorf("model file: %w", err)
	}
	ln, err := net.Listen("tcp", s.Addr())
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w (is another worker using port %d? pick another --port)", s.Addr(), err, s.cfg.Port)
	}
	srv := &http.Server{
		Handler:           api.RequireBearer(s.cfg.Token, s.mux, "/health"),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	attrs := []any{"addr", s.Addr(), "model", s.cfg.ModelPath, "slots", s.cfg.Slots, "ctx_size", s.cfg.CtxSize, "threads", s.cfg.Threads, "worker_id", s.cfg.WorkerID,
		"flash_attn", s.cfg.FlashAttention, "kv_cache_type", s.cfg.KVCacheType, "embeddings", s.cfg.Embeddings}
	if s.cfg.Backend != "" && s.cfg.Backend != engine.BackendCPU {
		attrs = append(attrs, "backend", s.cfg.Backend, "device", s.cfg.Device, "gpu_layers", s.cfg.GPULayers)
	}
	if s.cfg.Token != "" {
		attrs = append(attrs, "token", api.Fingerprint(s.cfg.Token))
	}
	s.log.Info("worker listening", attrs...)

	hashCtx, stopHash := context.WithCancel(ctx)
	hashed := make(chan struct{})
	go func() { s.hashModel(hashCtx); close(hashed) }()
	defer func() { stopHash(); <-hashed }() // nothing logs after Run returns
	loaded := make(chan error, 1)
	loadCtx, cancelLoad := context.WithCancel(ctx)
	defer cancelLoad()
	go func() { loaded <- s.load(loadCtx) }()
	loadTimer := time.NewTimer(s.cfg.LoadTimeout)
	defer loadTimer.Stop()

	var runErr error
wait:
	for {
		select {
		case err := <-loaded:
			if err != nil {
				runErr = err
				break wait
			}
			loadTimer.Stop()
			if s.cfg.CallbackURL != "" {
				go s.callback(ctx)
			}
		case <-loadTimer.C:
			runErr = fmt.Errorf("the model did not load within %s (--load-timeout); is the disk slow or the file huge?", s.cfg.LoadTimeout)
			break wait
		case err := <-serveErr:
			runErr = fmt.Errorf("serving %s: %w", s.Addr(), err)
			break wait
		case <-ctx.Done():
			s.log.Info("signal received, stopping")
			break wait
		case <-s.stopCh:
			s.log.Info("shutdown requested, stopping")
			break wait
		}
	}
	s.shutdown(srv)
	return runErr
}

// load loads the engine, publishing progress.
func (s *Server) load(ctx context.Context) error {
	if s.cfg.LoadDelay > 0 {
		s.log.Warn("delaying the model load (test hook)", "delay", s.cfg.LoadDelay)
		select {
		case <-time.After(s.cfg.LoadDelay):
		case <-ctx.Done():
			return nil
		}
	}
	start := time.Now()
	eng, err := engine.Load(ctx, s.cfg.ModelPath, s.engineOptions())
	if err != nil {
		return err
	}
	if s.stopping.Load() {
		eng.Close()
		return nil
	}
	s.progress.Store(uint64FromFloat(1))
	s.eng.Store(eng)
	s.log.Info("worker ready", "load_ms", time.Since(start).Milliseconds(), "url", s.URL())
	return nil
}

// shutdown stops accepting, cancels every job, waits for handlers (5 s at
// most) and frees the engine.
func (s *Server) shutdown(srv *http.Server) {
	s.stopping.Store(true)
	s.jobsMu.Lock()
	for _, cancel := range s.jobs {
		cancel()
	}
	s.jobsMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		s.log.Warn("handlers still running at shutdown", "err", err)
		srv.Close()
	}
	if eng := s.eng.Swap(nil); eng != nil {
		eng.Close()
	}
	s.log.Info("worker stopped")
}

// callback tells the hive that the worker is ready, retrying a few times.
func (s *Server) callback(ctx context.Context) {
	body, _ := json.Marshal(workerapi.Callback{WorkerID: s.cfg.WorkerID, URL: s.URL(), State: workerapi.CallbackReady})
	delay := 250 * time.Millisecond
	for attempt := 1; attempt <= 5; attempt++ {
		err := s.postCallback(ctx, body)
		if err == nil {
			s.log.Info("reported ready", "callback", s.cfg.CallbackURL)
			return
		}
		s.log.Warn("ready callback failed", "callback", s.cfg.CallbackURL, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay *= 2
	}
}

func (s *Server) postCallback(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.CallbackURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return api.ReadError(resp)
	}
	return nil
}

func uint64FromFloat(f float64) uint64 { return math.Float64bits(f) }
func floatFromUint64(u uint64) float64 { return math.Float64frombits(u) }

// Package gateway is the fleet's one OpenAI-compatible endpoint: it takes
// every chat, completion and embedding request, picks a ready worker of the
// pool (or model) the request names, the one with the most free slots or the
// one that served the request's leading part before, queues the request when
// every slot is busy, retries on another worker when one refuses before the
// first byte, and passes streams through token by token.
//
// Which workers exist comes from the state (and the hives' live state),
// re-read every few seconds; whether each is ready comes from polling its
// GET /v1/ready in the background, so no request pays for it.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/applier"
	"github.com/rbee-dev/rbee/state"
)

// Defaults of the gateway block.
const (
	DefaultListen       = "127.0.0.1:8080"
	DefaultQueue        = 64
	DefaultQueueTimeout = 30 * time.Second
)

// Options configure a Server. State is required; zero values take defaults.
type Options struct {
	// State is the fleet's state: which workers exist and where.
	State state.Reader
	// Keys, when set, are the API keys every request must carry.
	Keys *Keys
	// Queue is how many requests per pool or model may wait for a slot; 0
	// answers QUEUE_FULL at once when every slot is busy.
	Queue int
	// QueueTimeout is how long a request may wait for a slot.
	QueueTimeout time.Duration
	// NoPrefixAffinity turns prefix affinity off: every request goes to the
	// worker with the most free slots.
	NoPrefixAffinity bool
	// PollInterval is how often each worker's readiness is asked (default 1s).
	PollInterval time.Duration
	// StateInterval is how often the state and the hives are read (default 3s).
	StateInterval time.Duration
	// HTTP is the client for workers and hives; nil uses one without a total timeout.
	HTTP *http.Client
	// Log receives the gateway's notes; nil discards them.
	Log *slog.Logger
}

// Server is the gateway. Handler serves its API; Run keeps its view of the
// fleet fresh and must run for as long as Handler serves.
type Server struct {
	opts    Options
	fleet   *fleet
	metrics *metrics
	http    *http.Client
	tokens  applier.Tokens
	log     *slog.Logger
	mux     *http.ServeMux
	primed  chan struct{} // closed once the fleet was read and polled once
}

// New returns a gateway over the fleet in opts.State.
func New(opts Options) (*Server, error) {
	if opts.State == nil {
		return nil, errors.New("gateway: no state to read the fleet from")
	}
	if opts.Queue < 0 {
		return nil, fmt.Errorf("gateway: queue is %d; allowed: 0 (no queue) or more", opts.Queue)
	}
	if opts.QueueTimeout <= 0 {
		opts.QueueTimeout = DefaultQueueTimeout
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.StateInterval <= 0 {
		opts.StateInterval = 3 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	entries := 1 << 16
	if opts.NoPrefixAffinity {
		entries = 0
	}
	s := &Server{opts: opts, fleet: newFleet(entries), http: opts.HTTP, log: opts.Log,
		tokens: applier.TokensOf(opts.State), primed: make(chan struct{})}
	if s.http == nil {
		s.http = httpClient()
	}
	s.metrics = newMetrics(s.fleet)
	s.routes()
	return s, nil
}

// Gatherer is the gateway's Prometheus metrics, for a server that serves
// them beside its own (rbee watch).
func (s *Server) Gatherer() prometheus.Gatherer { return s.metrics.reg }

// Handler is the gateway's HTTP API, API keys checked when there are any.
func (s *Server) Handler() http.Handler { return requireKey(s.opts.Keys, s.mux) }

// Run keeps the view of the fleet fresh until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	s.refreshLoop(ctx)
	return nil
}

// Serve listens on addr and serves the gateway until ctx ends, then stops
// taking connections and gives running requests up to 30 s to finish. It
// refuses an address off loopback without API keys.
func (s *Server) Serve(ctx context.Context, addr string) error {
	if err := CheckListen(addr, s.opts.Keys); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("gateway: listen on %s: %w (is another program using the port? pick another with --listen)", addr, err)
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	go s.refreshLoop(rctx)
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	keys := "none (loopback only)"
	if s.opts.Keys != nil {
		keys = fmt.Sprintf("%d from %s", s.opts.Keys.Len(), s.opts.Keys.file)
	}
	s.log.Info("gateway listening", "url", "http://"+ln.Addr().String(), "api_keys", keys,
		"queue", s.opts.Queue, "queue_timeout", s.opts.QueueTimeout.String(), "prefix_affinity", !s.opts.NoPrefixAffinity)
	select {
	case err := <-errc:
		return fmt.Errorf("gateway: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	return nil
}

// Ready returns a channel closed once the fleet was read and every worker
// polled once (requests before then may find no worker).
func (s *Server) Ready() <-chan struct{} { return s.primed }

func (s *Server) token(node string) (string, error) { return s.tokens.Get(node) }

func (s *Server) hive(n *state.NodeRecord) (*hiveapi.Client, error) {
	c, err := s.tokens.Client(n)
	if err != nil {
		return nil, err
	}
	c.HTTP = s.http
	return c, nil
}

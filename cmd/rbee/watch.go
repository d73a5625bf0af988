package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/applier"
	"github.com/rbee-dev/rbee/gateway"
	"github.com/rbee-dev/rbee/reconciler"
)

// watchFlags are rbee watch's own flags.
type watchFlags struct {
	interval, debounce time.Duration
	listen, tokenFile  string
	planOnly, debug    bool
	allowDestroy       bool
}

// watchCommands returns `rbee watch`, the reconcile daemon.
func watchCommands() []*cobra.Command {
	var f watchFlags
	cmd := &cobra.Command{
		Use: "watch [--config DIR|FILE] [--state DIR] [--interval 30s] [--listen 127.0.0.1:8080] [--plan-only]",
		Example: `  rbee watch --config fleet/ --interval 30s
  rbee watch --plan-only                    # report drift, never apply
  curl -s localhost:8080/v1/status`,
		Short: "Keep the fleet equal to the configuration: file watch, drift healing",
		Long: `Run the reconcile daemon. It plans and applies when the configuration
changes (saves are debounced, editors that save by renaming are handled, files
added to or removed from a --config folder count), and every --interval it
refreshes the state from the hives and applies again to heal drift: a killed
hive, a crashed worker the hive gave up on, a deleted model.

An invalid file is reported with its diagnostics (in the log and in
/v1/status) and the last valid configuration keeps running: nothing is torn
down because of a typo. A plan that deletes resources (a pool or node removed
from the file, or a file emptied by mistake) is not applied unless
--allow-destroy or watch { allow_destroy = true } is set: the daemon reports
it in /v1/status (last_error.stage "approval") and waits for a person to run
rbee apply. The state lock is held only while applying, so rbee plan still
works from a terminal; a manual apply holding the lock makes the daemon wait,
not fail.

  GET /v1/status   config hash, last plan, last apply, drift, last error, next check
  GET /metrics     Prometheus: reconciles, failures, durations, drift, workers by state

When the configuration has a gateway block, the same address also serves the
fleet's OpenAI-compatible gateway (see rbee gateway --help): POST
/v1/chat/completions, /v1/completions, /v1/embeddings, GET /v1/models, with
the block's api_keys_file, queue and queue_timeout; /metrics then has both.

SIGTERM (or Ctrl-C) lets the change in flight finish and be recorded, releases
the lock and exits 0; a second signal exits at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runWatch(cmd, f) },
	}
	addFleetFlags(cmd)
	fs := cmd.Flags()
	fs.DurationVar(&f.interval, "interval", reconciler.DefaultInterval, "how often to refresh from the hives and heal drift")
	fs.DurationVar(&f.debounce, "debounce", reconciler.DefaultDebounce, "quiet time after a file change before planning")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8080", "address of the status, metrics (and gateway) server ('' for none)")
	fs.StringVar(&f.tokenFile, "token-file", "", "bearer token file (0600) required by the status server; needed for a non-loopback --listen")
	fs.BoolVar(&f.planOnly, "plan-only", false, "only plan and report; never apply")
	fs.BoolVar(&f.allowDestroy, "allow-destroy", false, "apply plans that delete resources the file no longer declares (also: watch { allow_destroy = true })")
	fs.Int("parallelism", 0, "how many changes an apply runs at once (default 10)")
	fs.BoolVar(&f.debug, "debug", false, "log every file event")
	addVarFlags(fs)
	return []*cobra.Command{cmd}
}

// runWatch runs the daemon until a signal.
func runWatch(cmd *cobra.Command, f watchFlags) error {
	level := slog.LevelInfo
	if f.debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
	token, err := watchToken(f)
	if err != nil {
		return exitCode(1, err)
	}
	ctx, stop := onSignals(cmd.Context(), func(s os.Signal) {
		logger.Info("signal received: finishing the step in flight, then exiting (send it again to quit now)", "signal", s.String())
	}, func() {
		logger.Error("second signal: exiting now; if the state stays locked, release it with rbee state unlock ID")
		os.Exit(1)
	})
	defer stop()

	st, err := openState(cmd)
	if err != nil {
		return err
	}
	r, err := reconciler.New(ctx, reconciler.Options{
		ConfigPath: configPath(cmd), StateDir: stateDir(cmd), State: st, Load: loadOptions(cmd),
		Interval: f.interval, Debounce: f.debounce, PlanOnly: f.planOnly, AllowDestroy: f.allowDestroy,
		Parallelism: mustSettings(cmd).GetInt("parallelism"), BinarySHA256: applier.HiveBinarySHA256,
		Logger: logger, Out: cmd.OutOrStdout(),
	})
	if err != nil {
		return exitCode(1, err)
	}
	if f.listen != "" {
		h, err := watchHandler(ctx, cmd, r, token, f.listen, logger)
		if err != nil {
			return exitCode(1, err)
		}
		shutdown, err := serveWatch(f.listen, h, logger)
		if err != nil {
			return exitCode(1, err)
		}
		defer shutdown()
	}
	if err := r.Run(ctx); err != nil {
		return exitCode(1, err)
	}
	return nil
}

// watchToken checks --listen and reads --token-file.
func watchToken(f watchFlags) (string, error) {
	token := ""
	if f.tokenFile != "" {
		t, err := api.ReadTokenFile(f.tokenFile)
		if err != nil {
			return "", err
		}
		token = t
	}
	if f.listen == "" {
		return token, nil
	}
	if err := checkListenAddr(f.listen); err != nil {
		return "", err
	}
	return token, api.CheckListen(f.listen, token)
}

// watchHandler is the daemon's HTTP API: status and metrics behind the
// token, and the gateway when the configuration has a gateway block.
func watchHandler(ctx context.Context, cmd *cobra.Command, r *reconciler.Reconciler, token, listen string, log *slog.Logger) (http.Handler, error) {
	gw, err := watchGateway(ctx, cmd, listen, log)
	if err != nil || gw == nil {
		return api.RequireBearer(token, r.Handler()), err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/status", api.RequireBearer(token, r.Handler()))
	metrics := promhttp.HandlerFor(prometheus.Gatherers{r.Gatherer(), withoutRuntime{gw.Gatherer()}}, promhttp.HandlerOpts{})
	mux.Handle("GET /metrics", api.RequireBearer(token, metrics))
	mux.Handle("/", gw.Handler())
	return mux, nil
}

// withoutRuntime drops the go_ and process_ families, which the daemon's
// own registry already serves for this process.
type withoutRuntime struct{ prometheus.Gatherer }

func (g withoutRuntime) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := g.Gatherer.Gather()
	return slices.DeleteFunc(mfs, func(mf *dto.MetricFamily) bool {
		return strings.HasPrefix(mf.GetName(), "go_") || strings.HasPrefix(mf.GetName(), "process_")
	}), err
}

// watchGateway starts the gateway of the configuration's gateway block, or
// returns nil when there is none (or the file does not load yet).
func watchGateway(ctx context.Context, cmd *cobra.Command, listen string, log *slog.Logger) (*gateway.Server, error) {
	cfg := quietConfig(cmd)
	if cfg == nil || cfg.Gateway == nil {
		return nil, nil // the daemon reports a broken file itself
	}
	g := cfg.Gateway
	srv, err := newGateway(cmd, listen, g.APIKeysFile, gateway.Options{Queue: g.Queue, QueueTimeout: g.QueueTimeout, Log: log})
	if err != nil {
		return nil, err
	}
	go func() { _ = srv.Run(ctx) }()
	if g.Listen != listen {
		log.Info("the gateway is served on rbee watch's --listen, not on the gateway block's listen", "listen", listen, "block_listen", g.Listen)
	}
	return srv, nil
}

// serveWatch serves h on listen and returns the function that stops it.
func serveWatch(listen string, h http.Handler, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("status server: %w (pick another address with --listen, or --listen '' to serve none)", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("status server stopped", "err", err)
		}
	}()
	log.Info("serving status", "url", "http://"+ln.Addr().String()+"/v1/status", "metrics", "http://"+ln.Addr().String()+"/metrics")
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}

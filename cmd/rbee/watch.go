package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/applier"
	"github.com/rbee-dev/rbee/reconciler"
)

// watchCommands returns `rbee watch`, the reconcile daemon.
func watchCommands() []*cobra.Command {
	var (
		interval, debounce time.Duration
		listen, tokenFile  string
		planOnly, debug    bool
		allowDestroy       bool
	)
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
rbee apply. The state lock is held only while applying, so
rbee plan still works from a terminal; a manual apply holding the lock makes
the daemon wait, not fail.

  GET /v1/status   config hash, last plan, last apply, drift, last error, next check
  GET /metrics     Prometheus: reconciles, failures, durations, drift, workers by state

SIGTERM (or Ctrl-C) lets the change in flight finish and be recorded, releases
the lock and exits 0; a second signal exits at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if debug {
				level = slog.LevelDebug
			}
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			token := ""
			if tokenFile != "" {
				t, err := api.ReadTokenFile(tokenFile)
				if err != nil {
					return exitCode(1, err)
				}
				token = t
			}
			if listen != "" {
				if err := checkListenAddr(listen); err != nil {
					return exitCode(1, err)
				}
				if err := api.CheckListen(listen, token); err != nil {
					return exitCode(1, err)
				}
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
				ConfigPath:   configPath(cmd),
				StateDir:     stateDir(cmd),
				State:        st,
				Load:         loadOptions(cmd),
				Interval:     interval,
				Debounce:     debounce,
				PlanOnly:     planOnly,
				AllowDestroy: allowDestroy,
				Parallelism:  mustSettings(cmd).GetInt("parallelism"),
				BinarySHA256: applier.HiveBinarySHA256,
				Logger:       logger,
				Out:          cmd.OutOrStdout(),
			})
			if err != nil {
				return exitCode(1, err)
			}
			var srv *http.Server
			if listen != "" {
				ln, err := net.Listen("tcp", listen)
				if err != nil {
					return exitCode(1, fmt.Errorf("status server: %w (pick another address with --listen, or --listen '' to serve none)", err))
				}
				srv = &http.Server{Handler: api.RequireBearer(token, r.Handler()), ReadHeaderTimeout: 10 * time.Second}
				go func() {
					if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
						logger.Error("status server stopped", "err", err)
					}
				}()
				logger.Info("serving status", "url", "http://"+ln.Addr().String()+"/v1/status", "metrics", "http://"+ln.Addr().String()+"/metrics")
			}
			err = r.Run(ctx)
			if srv != nil {
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = srv.Shutdown(sctx)
				cancel()
			}
			if err != nil {
				return exitCode(1, err)
			}
			return nil
		},
	}
	addFleetFlags(cmd)
	fs := cmd.Flags()
	fs.DurationVar(&interval, "interval", reconciler.DefaultInterval, "how often to refresh from the hives and heal drift")
	fs.DurationVar(&debounce, "debounce", reconciler.DefaultDebounce, "quiet time after a file change before planning")
	fs.StringVar(&listen, "listen", "127.0.0.1:8080", "address of the status and metrics server ('' for none)")
	fs.StringVar(&tokenFile, "token-file", "", "bearer token file (0600) required by the status server; needed for a non-loopback --listen")
	fs.BoolVar(&planOnly, "plan-only", false, "only plan and report; never apply")
	fs.BoolVar(&allowDestroy, "allow-destroy", false, "apply plans that delete resources the file no longer declares (also: watch { allow_destroy = true })")
	fs.Int("parallelism", 0, "how many changes an apply runs at once (default 10)")
	fs.BoolVar(&debug, "debug", false, "log every file event")
	addVarFlags(fs)
	return []*cobra.Command{cmd}
}

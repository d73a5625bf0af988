package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/rbee-dev/rbee/agents/hive"
	"github.com/rbee-dev/rbee/agents/hive/modelstore"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/secret"
	"github.com/spf13/cobra"
)

// hiveCommands returns `rbee hive`, the node agent.
func hiveCommands() []*cobra.Command {
	var cfg hive.Config
	var tokenFile, envFile string
	cmd := &cobra.Command{
		Use:   "hive --listen ADDR --data-dir DIR [--token-file F]",
		Short: "Run the node agent: model catalog, worker supervisor, live state (HTTP)",
		Long: `Run the hive, rbee's node agent. It downloads and catalogues models, checks
resources, spawns and supervises rbee workers on ports 8001 and up (bound to
the same host as --listen), and reports the node's live state on /v1/state.

A non-loopback --listen needs --token-file (a 0600 file with a bearer token).
HF_ENDPOINT and HF_TOKEN in the environment are used for hf: models and are
passed on to workers. --env-file adds KEY=VALUE lines from a 0600 file (rbee
apply writes the node's env there, so no value shows on a command line).
SIGTERM stops every worker before the hive exits.`,
		Example: `  rbee hive --listen 127.0.0.1:9200 --data-dir /tmp/hive &
  curl -X PUT localhost:9200/v1/models/tiny -d '{"source":"synth:tiny"}'
  curl -X PUT localhost:9200/v1/workers/chat-0 -d '{"model":"tiny","slots":2}'
  curl localhost:9200/v1/state`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkListenAddr(cfg.Listen); err != nil {
				return exitCode(1, err)
			}
			if tokenFile != "" {
				tok, err := api.ReadTokenFile(tokenFile)
				if err != nil {
					return exitCode(1, err)
				}
				cfg.Token, cfg.TokenFile = tok, tokenFile
			}
			if envFile != "" {
				pairs, err := secret.ReadEnvFile(envFile)
				if err != nil {
					return exitCode(1, err)
				}
				cfg.Env = append(os.Environ(), pairs...) // the file's values win
			}
			cfg.Version = version
			cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			if err := hive.Run(ctx, cfg); err != nil {
				return exitCode(1, err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:9200", "address to serve the API on (host:port)")
	f.StringVar(&cfg.DataDir, "data-dir", "", "folder for the model catalog, models, worker list and logs (required)")
	f.StringVar(&tokenFile, "token-file", "", "file holding the bearer token (mode 0600); required for a non-loopback --listen")
	f.StringVar(&envFile, "env-file", "", "file of KEY=VALUE lines (mode 0600) added to the environment of the hive and its workers")
	f.DurationVar(&cfg.HealthInterval, "health-interval", hive.DefaultHealthInterval, "how often workers are health-checked")
	f.DurationVar(&cfg.StallTimeout, "stall-timeout", modelstore.DefaultStallTimeout, "a download with no data for this long is retried")
	f.StringArrayVar(&cfg.FileRoots, "file-roots", nil, "a folder file:// models may be read from (repeatable); without it any regular .gguf file the hive can read")
	f.DurationVar(&cfg.StopGrace, "stop-grace", hive.DefaultStopGrace, "how long a worker gets to stop after SIGTERM before SIGKILL")
	_ = cmd.MarkFlagRequired("data-dir")
	return []*cobra.Command{cmd}
}

// checkListenAddr refuses a --listen that is not host:port with a port in
// 1024-65535, before anything is bound.
func checkListenAddr(addr string) error {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q is not host:port; use e.g. 127.0.0.1:9200", addr)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1024 || port > 65535 {
		return fmt.Errorf("--listen %q: port %q is not allowed; use a port in 1024-65535 (default 9200)", addr, p)
	}
	return nil
}

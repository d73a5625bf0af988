package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/rbee-dev/rbee/gateway"
)

func newGatewayCmd() *cobra.Command {
	var (
		listen, keysFile string
		opts             gateway.Options
		debug            bool
	)
	cmd := &cobra.Command{
		Use:   "gateway [--listen 127.0.0.1:8080] [--config PATH] [--state DIR]",
		Short: "Serve one OpenAI-compatible endpoint for the whole fleet",
		Long: `Run the fleet's OpenAI-compatible gateway in the foreground:
POST /v1/chat/completions, /v1/completions (plain and "stream": true) and
/v1/embeddings, GET /v1/models, /metrics (Prometheus) and /health.

A request's "model" names a pool first, then a model; it goes to the ready
worker with the most free slots (or, for a conversation it saw before, the
worker that holds its prompt, within that worker's share of the load). When
every slot is busy it waits in a FIFO queue (--queue deep, for at most
--queue-timeout): a full queue answers 503 QUEUE_FULL, a long wait 504
QUEUE_TIMEOUT. A worker that refuses before the first byte (busy, draining,
unreachable) is retried on another; a draining worker gets nothing new.

The configuration's gateway block (listen, api_keys_file, queue,
queue_timeout) sets the defaults when --config names a file that has one;
flags win over it.

Workers come from the state that rbee apply records (--state, or .rbee beside
--config), re-read every few seconds, and each one's /v1/ready is polled
every second. Off loopback, --api-keys-file (0600, one key per line) is
required, and every request must send Authorization: Bearer KEY.`,
		Example: `  rbee gateway
  rbee gateway --listen 0.0.0.0:8080 --api-keys-file /etc/rbee/api-keys
  curl localhost:8080/v1/chat/completions -d '{"model":"chat","messages":[{"role":"user","content":"Hi"}],"stream":true}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := gatewayBlock(cmd, &listen, &keysFile, &opts); err != nil {
				return err
			}
			if err := checkListenAddr(listen); err != nil {
				return exitCode(1, err)
			}
			level := slog.LevelInfo
			if debug {
				level = slog.LevelDebug
			}
			opts.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			srv, err := newGateway(cmd, listen, keysFile, opts)
			if err != nil {
				return exitCode(1, err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := srv.Serve(ctx, listen); err != nil {
				return exitCode(1, err)
			}
			opts.Log.Info("gateway stopped")
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&listen, "listen", gateway.DefaultListen, "address to serve the gateway on")
	fs.StringVar(&keysFile, "api-keys-file", "", "file of API keys, one per line, mode 0600; required off loopback")
	fs.IntVar(&opts.Queue, "queue", gateway.DefaultQueue, "requests per pool or model that may wait for a slot")
	fs.DurationVar(&opts.QueueTimeout, "queue-timeout", gateway.DefaultQueueTimeout, "longest a request waits for a slot")
	fs.BoolVar(&opts.NoPrefixAffinity, "no-prefix-affinity", false, "send every request to the worker with the most free slots, ignoring which one saw its prompt")
	fs.DurationVar(&opts.PollInterval, "poll-interval", time.Second, "how often each worker's readiness is asked")
	fs.BoolVar(&debug, "debug", false, "log debug messages")
	addFleetFlags(cmd)
	return cmd
}

// gatewayBlock takes the settings of the configuration's gateway block, when
// the configuration exists and has one, for every flag not given.
func gatewayBlock(cmd *cobra.Command, listen, keysFile *string, opts *gateway.Options) error {
	if _, err := os.Stat(configPath(cmd)); err != nil {
		if cmd.Flags().Changed("config") {
			return exitCode(1, fmt.Errorf("--config %s: %w", configPath(cmd), err))
		}
		return nil // no configuration: the state alone describes the fleet
	}
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	g := cfg.Gateway
	if g == nil {
		return nil
	}
	fs := cmd.Flags()
	if !fs.Changed("listen") {
		*listen = g.Listen
	}
	if !fs.Changed("api-keys-file") {
		*keysFile = g.APIKeysFile
	}
	if !fs.Changed("queue") {
		opts.Queue = g.Queue
	}
	if !fs.Changed("queue-timeout") {
		opts.QueueTimeout = g.QueueTimeout
	}
	return nil
}

// newGateway is the gateway of opts over the command's state, with the API
// keys of keysFile (none: loopback only).
func newGateway(cmd *cobra.Command, listen, keysFile string, opts gateway.Options) (*gateway.Server, error) {
	if keysFile != "" {
		k, err := gateway.LoadKeys(keysFile)
		if err != nil {
			return nil, err
		}
		opts.Keys = k
	}
	if err := gateway.CheckListen(listen, opts.Keys); err != nil {
		return nil, err
	}
	st, err := openState(cmd)
	if err != nil {
		return nil, err
	}
	opts.State = st
	return gateway.New(opts)
}

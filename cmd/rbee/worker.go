package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/rbee-dev/rbee/agents/worker"
	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/engine/cpu"
	"github.com/rbee-dev/rbee/spec"
)

// newWorkerCmd is `rbee worker`: one llama.cpp worker process serving a model over HTTP.
func newWorkerCmd() *cobra.Command {
	var cfg worker.Config
	var tokenFile string
	cmd := &cobra.Command{
		Use:   "worker --model PATH --port N",
		Short: "Serve one GGUF model over HTTP (native SSE and OpenAI-compatible)",
		Long: `Serve one GGUF model with llama.cpp. Several requests share the model's slots
and are decoded in one batch. The hive starts workers; run one by hand to try a model.

--port must be 1024-65535. Binding an address other than loopback needs --token-file
(a 0600 file holding the bearer token). SIGTERM stops accepting, cancels running jobs
and exits 0. POST /v1/admin/drain refuses new requests and lets running ones finish.

A model that cannot be loaded as asked (missing file, a file llama.cpp refuses,
invalid options) exits 3 after one stderr line "error: <the cause>"; starting the
worker again would fail the same way.`,
		Example: `  # make a tiny model and serve it on port 8001
  rbee model synth --preset tiny --out tiny.gguf && rbee worker --model tiny.gguf --port 8001

  # in another terminal: stream tokens as server-sent events
  curl -N localhost:8001/v1/inference -d '{"prompt":"Once upon a time","max_tokens":20}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			slog.SetDefault(log)
			cfg.Logger = log
			execWithHugePages(log)
			limitGoProcs(log, cfg)
			if tokenFile != "" {
				tok, err := api.ReadTokenFile(tokenFile)
				if err != nil {
					return exitCode(1, err)
				}
				cfg.Token = tok
			}
			if d := os.Getenv("RBEE_WORKER_LOAD_DELAY"); d != "" {
				// Test hook: hold the load back so the loading state can be observed.
				delay, err := time.ParseDuration(d)
				if err != nil {
					return exitCode(1, fmt.Errorf("RBEE_WORKER_LOAD_DELAY=%q: %w", d, err))
				}
				cfg.LoadDelay = delay
			}
			srv, err := worker.New(cfg)
			if err != nil {
				return exitCode(1, err)
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			if err := srv.Run(ctx); err != nil {
				if errors.Is(err, worker.ErrLoad) {
					// One line the hive can show as the reason; the status says
					// that starting again will not help.
					fmt.Fprintln(os.Stderr, "error:", err)
					return exitCode(workerapi.ExitLoadFailed, nil)
				}
				return exitCode(1, err)
			}
			return nil
		},
	}
	workerFlags(cmd, &cfg, &tokenFile)
	return cmd
}

// execWithHugePages runs the worker again, same pid and arguments, with
// glibc's malloc asking for transparent huge pages (cpu.ExecWithHugePages):
// llama.cpp's buffers then take a TLB entry per 2 MiB instead of per 4 KiB,
// and single-stream decode on the benchmark model went from 20 to 28 tok/s.
// It returns when the tunable is already set (also to opt out:
// GLIBC_TUNABLES=glibc.malloc.hugetlb=0) or the restart fails.
func execWithHugePages(log *slog.Logger) {
	if err := cpu.ExecWithHugePages(); err != nil {
		log.Warn("could not start the worker again with huge pages; running without", "err", err)
		return
	}
	log.Info("malloc tunables (glibc.malloc.hugetlb=1: llama.cpp buffers on huge pages)", "GLIBC_TUNABLES", os.Getenv("GLIBC_TUNABLES"))
}

// limitGoProcs leaves the cores of a CPU worker's llama.cpp threads to them
// (cpu.GoProcs), unless $GOMAXPROCS says otherwise. A GPU worker's threads
// mostly wait for the device, and its Go code keeps the default.
func limitGoProcs(log *slog.Logger, cfg worker.Config) {
	if _, set := os.LookupEnv("GOMAXPROCS"); set || (cfg.Backend != "" && cfg.Backend != spec.BackendCPU) {
		return
	}
	threads := cpu.Threads(cfg.Threads)
	n := cpu.GoProcs(runtime.GOMAXPROCS(0), threads)
	runtime.GOMAXPROCS(n)
	log.Info("Go code gets the cores llama.cpp's threads leave", "gomaxprocs", n, "threads", threads)
}

// workerFlags declares rbee worker's flags into cfg and tokenFile.
func workerFlags(cmd *cobra.Command, cfg *worker.Config, tokenFile *string) {
	f := cmd.Flags()
	f.StringVar(&cfg.ModelPath, "model", "", "GGUF model file to serve (required)")
	f.IntVar(&cfg.Port, "port", 0, "TCP port to listen on, 1024-65535 (required)")
	f.StringVar(&cfg.Host, "host", "127.0.0.1", "address to listen on; non-loopback needs --token-file")
	f.IntVar(&cfg.Slots, "slots", spec.DefaultSlots, "requests decoded together (continuous batching)")
	f.IntVar(&cfg.CtxSize, "ctx-size", spec.DefaultCtxSize, "context length of each slot, in tokens")
	f.IntVar(&cfg.Threads, "threads", 0, "CPU threads; 0 = number of physical cores")
	f.StringVar(&cfg.WorkerID, "worker-id", "", "id reported by /v1/ready and the ready callback (default worker-PORT)")
	f.StringVar(tokenFile, "token-file", "", "file (mode 0600) holding the bearer token clients must send")
	f.StringVar(&cfg.CallbackURL, "callback-url", "", `URL to POST {"worker_id","url","state":"ready"} to once loaded`)
	f.DurationVar(&cfg.LoadTimeout, "load-timeout", 5*time.Minute, "give up when the model is not loaded within this time")
	f.BoolVar(&cfg.FlashAttention, "flash-attn", false, "use flash attention (needed by a quantized --kv-cache-type)")
	f.StringVar(&cfg.KVCacheType, "kv-cache-type", worker.KVCacheTypes[0], "KV cache element type: "+strings.Join(worker.KVCacheTypes, ", ")+" (q8_0 and q4_0 need --flash-attn)")
	f.StringVar(&cfg.ChatTemplate, "chat-template", "", "built-in chat template to use instead of the model's own (chatml, llama3, phi3, ...)")
	f.BoolVar(&cfg.Embeddings, "embeddings", false, "serve POST /v1/embeddings")
	f.StringVar(&cfg.Backend, "backend", "cpu", "what the model's layers compute on: cpu, or cuda (needs libggml-cuda.so in the library folder and an NVIDIA GPU)")
	f.IntVar(&cfg.Device, "device", 0, "the CUDA device (0, 1, …) of --backend cuda")
	f.IntVar(&cfg.GPULayers, "gpu-layers", 0, "layers offloaded to the GPU with --backend cuda; 0 = all of them")
	_ = cmd.MarkFlagRequired("model")
	_ = cmd.MarkFlagRequired("port")
}

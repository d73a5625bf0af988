package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/rbee-dev/rbee/applier"
	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/infer"
)

// errTerminated is the cancel cause for SIGTERM (exit 143).
var errTerminated = errors.New("terminated")

// inferLong is the --help text of rbee infer.
const inferLong = `Send a prompt to the least loaded ready worker of a model and stream the
generated tokens to stdout as they come; the worker used and the prompt and
decode speeds go to stderr (--json writes one JSON event per line instead).

Workers come from the state that rbee apply records (--state, or .rbee beside
--config); each one's live /v1/ready decides. A busy worker (all slots in use)
is skipped for another, and so is one that is gone before the first token
(connection refused); when all are busy rbee infer waits 1, 2 and 4 s and
tries again. Ctrl-C cancels the job on the worker and exits with status 130.

A worker that sends nothing for --stall-timeout (default 60s; a hung or
stopped process) has its job cancelled, and rbee infer exits 1 naming it;
--timeout bounds the whole request. A worker that dies mid-stream is named
with the number of tokens it sent.

--gateway URL sends the prompt through an OpenAI-compatible gateway (rbee
gateway) instead: POST URL/v1/completions, streamed, printed the same way;
--model then names a pool or a model the gateway knows, and --api-key (or
RBEE_API_KEY) is its key.

With no ready worker it fails and says which pool to apply; --ephemeral starts
a temporary worker through the hive of a node that has the model instead, and
stops it afterwards. --prompt - reads the prompt from stdin.

Exit status: 0 done, 1 error, 130 interrupted (Ctrl-C), 143 terminated.`

func newInferCmd() *cobra.Command {
	var (
		req     infer.Request
		prompt  string
		maxTok  int
		temp    float64
		seed    int64
		topP    float64
		topK    int
		asJSON  bool
		timeout time.Duration
		stall   time.Duration
		gw      infer.Gateway
	)
	cmd := &cobra.Command{
		Use:   "infer --model NAME --prompt TEXT",
		Short: "Stream tokens from a ready worker of a model",
		Long:  inferLong,
		Example: `  rbee infer --model tiny --prompt "Once upon a time" --max-tokens 32
  rbee infer --model tiny --prompt "Hello" --temperature 0 --json
  rbee infer --model tiny --prompt "Hello" --stall-timeout 10s --timeout 2m
  rbee infer --gateway http://127.0.0.1:8080 --model chat --prompt "Hello"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if prompt == "-" {
				b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
				if err != nil {
					return exitCode(1, fmt.Errorf("reading the prompt from stdin: %w", err))
				}
				prompt = strings.TrimRight(string(b), "\n")
			}
			if prompt == "" {
				return exitCode(1, errors.New("the prompt is empty: pass --prompt TEXT (or --prompt - to read stdin)"))
			}
			fs := cmd.Flags()
			p := &req.Params
			p.Prompt = prompt
			p.MaxTokens = &maxTok
			p.Temperature = &temp
			if fs.Changed("seed") {
				p.Seed = &seed
			}
			if fs.Changed("top-p") {
				p.TopP = &topP
			}
			if fs.Changed("top-k") {
				p.TopK = &topK
			}
			if stall < 0 || timeout < 0 {
				return exitCode(1, errors.New("--timeout and --stall-timeout must not be negative (0 = no limit)"))
			}
			if err := checkGateway(&gw, req); err != nil {
				return exitCode(1, err)
			}
			return runInfer(cmd, req, asJSON, timeout, stall, gw)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&req.Model, "model", "", "model name, as in the configuration (required)")
	fs.StringVar(&prompt, "prompt", "", "the prompt; - reads it from stdin (required)")
	fs.IntVar(&maxTok, "max-tokens", 20, "most tokens to generate")
	fs.Float64Var(&temp, "temperature", 0.7, "sampling temperature, 0 (greedy) to 2")
	fs.Int64Var(&seed, "seed", 0, "sampling seed, for repeatable output (default random)")
	fs.Float64Var(&topP, "top-p", 0.95, "nucleus sampling: keep the most likely tokens up to this probability mass")
	fs.IntVar(&topK, "top-k", 40, "keep only the K most likely tokens (0 = off)")
	fs.StringVar(&req.Node, "node", "", "use only workers on this node")
	fs.StringVar(&req.Pool, "pool", "", "use only workers of this pool")
	fs.BoolVar(&asJSON, "json", false, "write NDJSON events to stdout (start, token, end, error)")
	fs.BoolVar(&req.Ephemeral, "ephemeral", false, "with no ready worker, start a temporary one through a hive and stop it afterwards")
	fs.DurationVar(&timeout, "timeout", 0, "give up on the whole request (and cancel the job) after this long; 0 = no limit")
	fs.StringVar(&gw.URL, "gateway", "", "send the prompt through this OpenAI-compatible gateway (base URL) instead of a worker from the state")
	fs.StringVar(&gw.APIKey, "api-key", "", "API key for --gateway (default $RBEE_API_KEY)")
	fs.DurationVar(&stall, "stall-timeout", 60*time.Second, "cancel the job when the worker sends no token for this long; 0 = no limit")
	fs.BoolVar(&req.Params.IgnoreEOS, "ignore-eos", false, "keep generating past end-of-text tokens, up to --max-tokens (benchmarks)")
	_ = cmd.MarkFlagRequired("model")
	_ = cmd.MarkFlagRequired("prompt")
	addFleetFlags(cmd)
	return cmd
}

// checkGateway refuses routing flags that --gateway cannot honour and takes
// the API key from RBEE_API_KEY when --api-key is not given.
func checkGateway(gw *infer.Gateway, req infer.Request) error {
	if gw.URL == "" {
		return nil
	}
	if req.Ephemeral || req.Node != "" || req.Pool != "" {
		return errors.New("--gateway routes the request itself: leave out --node, --pool and --ephemeral (name a pool with --model)")
	}
	if gw.APIKey == "" {
		gw.APIKey = os.Getenv("RBEE_API_KEY")
	}
	return nil
}

// runInfer routes the request and maps the outcome to the exit status.
func runInfer(cmd *cobra.Command, req infer.Request, asJSON bool, timeout, stall time.Duration, gw infer.Gateway) error {
	ctx, cancel := context.WithCancelCause(cmd.Context())
	defer cancel(nil)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case s := <-sigs:
			if s == syscall.SIGTERM {
				cancel(errTerminated)
			} else {
				cancel(infer.ErrInterrupted)
			}
		case <-ctx.Done():
		}
	}()
	if timeout > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(ctx, timeout)
		defer stop()
	}

	stderr := cmd.ErrOrStderr()
	out := &infer.Output{Stdout: cmd.OutOrStdout(), Stderr: stderr, JSON: asJSON}
	fail := func(code int, err error) error {
		out.Error(err, code)
		return exitCode(code, err)
	}
	var res infer.Outcome
	var err error
	if gw.URL != "" {
		gw.StallTimeout = stall
		res, err = gw.Run(ctx, req, out.Sink())
	} else {
		res, err = routeInfer(ctx, cmd, req, stall, out)
	}
	switch {
	case err == nil:
		if err := out.Done(res); err != nil {
			return fail(1, err)
		}
		return nil
	case errors.Is(err, infer.ErrInterrupted):
		return fail(130, stopped("interrupted", res))
	case errors.Is(err, errTerminated):
		return fail(143, stopped("terminated", res))
	case errors.Is(err, context.DeadlineExceeded):
		return fail(1, fmt.Errorf("gave up after --timeout %s: %w", timeout, err))
	}
	return fail(1, err)
}

// routeInfer runs the request on a worker the state records.
func routeInfer(ctx context.Context, cmd *cobra.Command, req infer.Request, stall time.Duration, out *infer.Output) (infer.Outcome, error) {
	st, err := openState(cmd)
	if err != nil {
		return infer.Outcome{}, err
	}
	router := &infer.Router{
		State:        st,
		Token:        applier.TokensOf(st).Get,
		Catalog:      func() (infer.Catalog, error) { return catalog(cmd) },
		Log:          slog.New(infer.NoteHandler(out.Stderr, slog.LevelInfo)),
		StallTimeout: stall,
	}
	return router.Run(ctx, req, out.Sink())
}

// catalog reads the configuration quietly, for the hints of infer's errors.
func catalog(cmd *cobra.Command) (infer.Catalog, error) {
	path := configPath(cmd)
	cfg, diags := config.Load(path, loadOptions(cmd))
	if diags.HasErrors() {
		for _, d := range diags.Diags {
			if d.Severity == hcl.DiagError {
				return infer.Catalog{}, fmt.Errorf("%s: %s: %s", path, d.Summary, d.Detail)
			}
		}
		return infer.Catalog{}, diags.Err()
	}
	c := infer.Catalog{Models: map[string][]string{}}
	for _, m := range cfg.Models {
		c.Models[m.Name] = nil
	}
	for _, p := range cfg.Pools {
		c.Models[p.Model] = append(c.Models[p.Model], p.Name)
	}
	for _, n := range cfg.Nodes {
		c.Nodes = append(c.Nodes, n.Name)
	}
	return c, nil
}

// stopped says what a signal interrupted.
func stopped(what string, res infer.Outcome) error {
	if res.Worker.URL == "" {
		return errors.New(what)
	}
	return fmt.Errorf("%s; job %s was cancelled on %s", what, res.JobID, res.Worker.Name())
}

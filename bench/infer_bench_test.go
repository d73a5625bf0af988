package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/applier"
	"github.com/rbee-dev/rbee/infer"
	"github.com/rbee-dev/rbee/internal/testsshd"
	"github.com/rbee-dev/rbee/state"
)

// Settings of the infer benchmark.
const (
	inferRuns      = 7 // interleaved runs of each path; medians are reported
	inferMaxTokens = 2
	inferPrompt    = "Once upon a time, in a small village at the edge of a great forest, there lived"
)

// BenchmarkInferWarm measures the warm path of `rbee infer`: a fleet brought
// up with `rbee apply` on this machine (one worker on the TinyLlama-shaped
// Q4_0 synth model), then time to first token
//  1. of a direct streaming POST /v1/inference to that worker (the baseline),
//  2. of the infer.Router in this process (state read, /v1/ready, request),
//  3. of the whole `rbee infer --json` command: process start, state, routing,
//     request, measured until its first token line reaches the pipe.
//
// The three run interleaved with the same request; the medians give the
// ratios router ÷ direct and command ÷ direct (goal ≤ 1.05).
func BenchmarkInferWarm(b *testing.B) {
	bin := rbeeBinary(b)
	model := benchModel(b, bin)
	dir := b.TempDir()
	cfg := inferBenchFleet(b, bin, dir, model)

	ctx := context.Background()
	st, err := state.Open(ctx, filepath.Join(dir, ".rbee"), state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	snap, err := st.Snapshot(ctx)
	if err != nil {
		b.Fatal(err)
	}
	wr := snap.Worker("bench", "local", 0)
	if wr == nil || wr.URL == "" {
		b.Fatalf("apply recorded no worker: %+v", snap.Workers)
	}
	tokens := applier.NewTokens(st.Dir())
	tok, err := tokens.Get("local")
	if err != nil {
		b.Fatal(err)
	}
	worker := workerapi.NewClient(wr.URL, tok)
	router := &infer.Router{State: st, Token: tokens.Get}
	params := func() workerapi.InferenceRequest {
		n, t, seed := inferMaxTokens, 0.0, int64(1)
		return workerapi.InferenceRequest{Prompt: inferPrompt, MaxTokens: &n, Temperature: &t, Seed: &seed, IgnoreEOS: true}
	}

	for range b.N {
		var direct, routed, command []float64
		for i := range inferRuns + 1 { // the first round warms every path up and is not counted
			// Each request starts on an idle worker, like a warm `rbee infer`
			// would, and the order rotates so that no path always follows another.
			var d, r, c float64
			paths := []func(){
				func() { d = directTTFT(b, worker, params()) },
				func() { r = routerTTFT(b, router, params()) },
				func() { c = commandTTFT(b, bin, cfg) },
			}
			for k := range paths {
				waitIdle(b, worker)
				paths[(i+k)%len(paths)]()
			}
			if i > 0 {
				direct, routed, command = append(direct, d), append(routed, r), append(command, c)
			}
		}
		md, mr, mc := median(direct), median(routed), median(command)
		// The added cost of each path, paired with the direct request of the
		// same round, resists the drift of a busy machine better than the ratio.
		extraR, extraC := make([]float64, len(direct)), make([]float64, len(direct))
		for i := range direct {
			extraR[i], extraC[i] = routed[i]-direct[i], command[i]-direct[i]
		}
		b.ReportMetric(mr/md, "router/direct")
		b.ReportMetric(mc/md, "command/direct")
		b.ReportMetric(md, "direct-ttft-ms")
		b.ReportMetric(median(extraC), "command-extra-ms")
		b.Logf("time to first token, median of %d (prompt of %d chars, %s, load average %s): direct request %.1f ms; infer.Router %.1f ms (%.3f× direct, %+.1f ms); `rbee infer` command %.1f ms (%.3f× direct, %+.1f ms; goal ≤ 1.05×)",
			inferRuns, len(inferPrompt), filepath.Base(model), loadAverage(), md, mr, mr/md, median(extraR), mc, mc/md, median(extraC))
	}
}

// inferBenchFleet applies a one-worker fleet on this machine and returns the
// configuration path; the fleet is destroyed when the benchmark ends.
func inferBenchFleet(b *testing.B, bin, dir, model string) string {
	port, err := testsshd.FreePort("127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	cfg := filepath.Join(dir, "rbee.hcl")
	body := fmt.Sprintf(`node "local" {
  connection = "local"
  hive_port  = %d
}
model "bench" {
  source = "file://%s"
}
pool "bench" {
  model    = "bench"
  nodes    = ["local"]
  replicas = 1
  slots    = 1
  ctx_size = 512
}
`, port, model)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		b.Fatal(err)
	}
	rbee := func(args ...string) ([]byte, error) {
		cmd := exec.Command(bin, append(args, "--config", cfg)...)
		cmd.Env = append(os.Environ(), "NO_COLOR=1")
		return cmd.CombinedOutput()
	}
	b.Cleanup(func() {
		if out, err := rbee("destroy", "-auto-approve"); err != nil {
			b.Logf("rbee destroy: %v\n%s", err, out)
		}
		testsshd.StopProcessesUnder(dir)
	})
	if out, err := rbee("apply", "-auto-approve"); err != nil {
		b.Fatalf("rbee apply: %v\n%s", err, out)
	}
	return cfg
}

// directTTFT streams one request straight to the worker and returns the
// milliseconds until the first token event.
func directTTFT(b *testing.B, w *workerapi.Client, req workerapi.InferenceRequest) float64 {
	start := time.Now()
	var first time.Duration
	_, err := w.Infer(context.Background(), req, func(ev workerapi.Event) error {
		if ev.Type == workerapi.EventToken && first == 0 {
			first = time.Since(start)
		}
		return nil
	})
	if err != nil || first == 0 {
		b.Fatalf("direct request: %v (first token after %s)", err, first)
	}
	return millis(first)
}

// waitIdle returns once every slot of the worker is free.
func waitIdle(b *testing.B, w *workerapi.Client) {
	deadline := time.Now().Add(time.Minute)
	for {
		r, err := w.Ready(context.Background())
		if err == nil && r.Ready && r.SlotsFree == r.SlotsTotal {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("the worker did not become idle: %+v %v", r, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// routerTTFT runs one request through infer.Router in this process.
func routerTTFT(b *testing.B, r *infer.Router, req workerapi.InferenceRequest) float64 {
	out, err := r.Run(context.Background(), infer.Request{Model: "bench", Params: req}, func(infer.Worker, workerapi.Event) error { return nil })
	if err != nil || out.Tokens == 0 || out.Attempts != 1 {
		b.Fatalf("router: %v (%d tokens, %d attempts)", err, out.Tokens, out.Attempts)
	}
	return millis(out.FirstToken)
}

// commandTTFT runs `rbee infer --json` and returns the milliseconds from the
// process start until its first token line can be read from its stdout.
func commandTTFT(b *testing.B, bin, cfg string) float64 {
	cmd := exec.Command(bin, "infer", "--config", cfg, "--model", "bench", "--prompt", inferPrompt,
		"--max-tokens", strconv.Itoa(inferMaxTokens), "--temperature", "0", "--seed", "1", "--ignore-eos", "--json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var first time.Duration
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		if first == 0 && strings.HasPrefix(sc.Text(), `{"type":"token"`) {
			first = time.Since(start)
		}
	}
	if err := cmd.Wait(); err != nil || first == 0 {
		b.Fatalf("rbee infer: %v (first token after %s)\n%s", err, first, stderr.String())
	}
	return millis(first)
}

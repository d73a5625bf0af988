// Package bench holds rbee's benchmarks. Each one measures its own baseline
// in the same run and reports ratios against it, so the figures mean the same
// on any machine. Run them with `just bench`.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/engine"
	"github.com/rbee-dev/rbee/engine/cpu"
)

// Sizes of the worker benchmark: tokens generated per stream.
const (
	workerBenchSlots    = 4
	workerBenchCtx      = 512
	workerSingleTokens  = 48
	workerBatchedTokens = 32
	workerBenchPrompt   = "Once upon a time, in a small village at the edge of a great forest, there lived"
)

// BenchmarkWorker measures, on the TinyLlama-shaped Q4_0 synth model:
//  1. worker decode tokens/s over HTTP ÷ the bare in-process engine loop
//     with the same threads, for 1 and 4 streams (target ≥ 0.99);
//  2. aggregate tokens/s of 4 concurrent streams ÷ 1 stream on one worker
//     (target ≥ 2.5), next to the same ratio for the bare batched loop, which
//     is the ceiling on this machine;
//  3. single-stream decode tokens/s × model bytes ÷ memory read bandwidth
//     measured here (the fraction of the memory roofline reached).
//
// Every figure is the median of a few interleaved rounds (5, or
// $RBEE_BENCH_ROUNDS), to resist noise from other processes.
func BenchmarkWorker(b *testing.B) {
	bin := rbeeBinary(b)
	// llama.cpp logs through slog at info level; keep the output readable.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	model := benchModel(b, bin)
	threads := cpu.PhysicalCores()
	b.Logf("model %s, %d threads (physical cores), %d logical CPUs", model, threads, runtime.NumCPU())

	rounds := benchRounds()
	for range b.N {
		// The testing package keeps only the first lines of a benchmark's log,
		// so the results go to stdout as well.
		report := func(format string, args ...any) {
			b.Logf(format, args...)
			fmt.Printf("worker bench: "+format+"\n", args...)
		}
		bw := workerMemoryBandwidth(threads)
		report("memory read bandwidth: %.1f GB/s", bw/1e9)
		// The bare loop runs in this process under the rule the worker
		// follows (cpu.GoProcs), and without the bandwidth test's buffers
		// left for a collection to find mid-loop.
		runtime.GC()
		procs := runtime.GOMAXPROCS(0)
		runtime.GOMAXPROCS(cpu.GoProcs(procs, threads))
		defer runtime.GOMAXPROCS(procs)

		ctx := context.Background()
		eng, err := engine.Load(ctx, model, engine.Options{Slots: workerBenchSlots, CtxSize: workerBenchCtx, Threads: threads})
		if err != nil {
			b.Fatal(err)
		}
		prompt, err := eng.Tokenize(workerBenchPrompt, true)
		if err != nil {
			b.Fatal(err)
		}
		sp := engine.DefaultSampling()
		sp.Seed = 1

		wk := startWorkerProc(b, bin, model, threads)
		report("load average before: %s", loadAverage())

		var bare1, bare4, http1, http4 []workerRates
		bare := func(seqs, tokens int) workerRates {
			res, err := eng.DecodeLoop(ctx, prompt, seqs, tokens, sp)
			if err != nil {
				b.Fatal(err)
			}
			return workerLoopRates(res)
		}
		// One short run of each first, not counted: the first batches of a
		// process fault its pages in and start its threads.
		bare(workerBenchSlots, 8)
		wk.streams(b, workerBenchSlots, 8)
		for r := range rounds {
			// Alternate which side goes first so that drifting load from
			// other processes does not favour one of them.
			if r%2 == 0 {
				bare1 = append(bare1, bare(1, workerSingleTokens))
				http1 = append(http1, wk.streams(b, 1, workerSingleTokens))
				bare4 = append(bare4, bare(workerBenchSlots, workerBatchedTokens))
				http4 = append(http4, wk.streams(b, workerBenchSlots, workerBatchedTokens))
			} else {
				http1 = append(http1, wk.streams(b, 1, workerSingleTokens))
				bare1 = append(bare1, bare(1, workerSingleTokens))
				http4 = append(http4, wk.streams(b, workerBenchSlots, workerBatchedTokens))
				bare4 = append(bare4, bare(workerBenchSlots, workerBatchedTokens))
			}
			report("round %d decode (end-to-end) tok/s: bare 1 = %v, bare 4 = %v; worker 1 = %v, worker 4 = %v",
				r+1, bare1[r], bare4[r], http1[r], http4[r])
		}
		report("load average after: %s", loadAverage())
		tensorBytes := float64(eng.Info().TensorBytes)
		wk.stop(b)
		eng.Close()

		b1, b4, h1, h4 := workerRateMedian(bare1), workerRateMedian(bare4), workerRateMedian(http1), workerRateMedian(http4)
		httpOverBare := h1.decode / b1.decode
		concurrency := h4.decode / h1.decode
		bareConcurrency := b4.decode / b1.decode
		roofline := b1.decode * tensorBytes / bw

		paired1, paired4 := pairedRatio(http1, bare1), pairedRatio(http4, bare4)
		report("medians of %d rounds; decode = after each stream's first token, end-to-end = from sending the request (prompt included)", rounds)
		report("(1) worker over HTTP %.2f tok/s ÷ bare loop %.2f tok/s = %.3f (target ≥ 0.99); end-to-end %.2f ÷ %.2f = %.3f",
			h1.decode, b1.decode, httpOverBare, h1.e2e, b1.e2e, h1.e2e/b1.e2e)
		report("    paired (the median of each round's worker ÷ the bare loop run just before or after it, which cancels load that drifts between rounds): 1 stream %.3f, 4 streams %.3f (target ≥ 0.99)",
			paired1, paired4)
		report("(2) worker 4 streams %.2f tok/s ÷ 1 stream %.2f tok/s = %.2f (target ≥ 2.5); bare loop 4 ÷ 1 = %.2f ÷ %.2f = %.2f (the ceiling on this machine)",
			h4.decode, h1.decode, concurrency, b4.decode, b1.decode, bareConcurrency)
		report("    worker 4 streams ÷ bare 4-sequence loop = %.3f (end-to-end %.3f)", h4.decode/b4.decode, h4.e2e/b4.e2e)
		report("(3) decode %.2f tok/s × %.0f MB ÷ %.1f GB/s = %.3f of the memory roofline (ceiling %.1f tok/s)",
			b1.decode, tensorBytes/1e6, bw/1e9, roofline, bw/tensorBytes)
		x1, x4, y1, y4 := workerRateBest(bare1), workerRateBest(bare4), workerRateBest(http1), workerRateBest(http4)
		report("best of rounds (closest to an idle machine): bare 1 = %.2f, bare 4 = %.2f, worker 1 = %.2f, worker 4 = %.2f tok/s; (1) %.3f (2) %.2f, bare %.2f (3) %.3f",
			x1.decode, x4.decode, y1.decode, y4.decode, y1.decode/x1.decode, y4.decode/y1.decode, x4.decode/x1.decode, x1.decode*tensorBytes/bw)

		b.ReportMetric(httpOverBare, "http/bare")
		b.ReportMetric(paired1, "http/bare_paired")
		b.ReportMetric(paired4, "http4/bare4_paired")
		b.ReportMetric(h1.e2e/b1.e2e, "http/bare_e2e")
		b.ReportMetric(concurrency, "4streams/1")
		b.ReportMetric(bareConcurrency, "bare4/bare1")
		b.ReportMetric(h4.decode/b4.decode, "http4/bare4")
		b.ReportMetric(roofline, "roofline")
		b.ReportMetric(b1.decode, "bare_tok/s")
		b.ReportMetric(h1.decode, "http_tok/s")
		b.ReportMetric(bw/1e9, "GB/s")
		b.ReportMetric(y1.decode/x1.decode, "best_http/bare")
	}
}

// workerRates are aggregate tokens per second over all streams of one run.
type workerRates struct {
	decode float64 // tokens after each stream's first, over the decode time
	e2e    float64 // all tokens, over the time from the request (prompt included)
}

func (r workerRates) String() string { return fmt.Sprintf("%.2f (%.2f)", r.decode, r.e2e) }

func workerLoopRates(r engine.LoopResult) workerRates {
	return workerRates{
		decode: r.TokensPerSecond(),
		e2e:    float64(r.Seqs*r.Tokens) / (r.PromptTime + r.DecodeTime).Seconds(),
	}
}

// pairedRatio is the median over rounds of worker ÷ bare decode rates of
// the same round, which ran back to back.
func pairedRatio(worker, bare []workerRates) float64 {
	w, b := make([]float64, len(worker)), make([]float64, len(bare))
	for i := range worker {
		w[i], b[i] = worker[i].decode, bare[i].decode
	}
	return medianRatio(w, b)
}

// workerRateMedian takes the median of each rate separately.
func workerRateMedian(rs []workerRates) workerRates {
	decode, e2e := make([]float64, len(rs)), make([]float64, len(rs))
	for i, r := range rs {
		decode[i], e2e[i] = r.decode, r.e2e
	}
	return workerRates{decode: median(decode), e2e: median(e2e)}
}

// workerRateBest takes the highest of each rate separately.
func workerRateBest(rs []workerRates) workerRates {
	var best workerRates
	for _, r := range rs {
		best.decode = max(best.decode, r.decode)
		best.e2e = max(best.e2e, r.e2e)
	}
	return best
}

// workerMemoryBandwidth measures read bandwidth in bytes/s: goroutines
// compare two large identical buffers (a vectorised, read-only loop). It
// takes the best of many short passes with 1 and with threads goroutines, so
// that a pass descheduled by other processes does not count.
func workerMemoryBandwidth(threads int) float64 {
	const size = 256 << 20
	a := make([]byte, size)
	c := make([]byte, size)
	for i := range a {
		a[i] = byte(i)
	}
	copy(c, a)
	best := 0.0
	for _, n := range []int{1, threads} {
		chunk := size / n
		for range 20 {
			var wg sync.WaitGroup
			start := time.Now()
			for t := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					lo := t * chunk
					if !bytes.Equal(a[lo:lo+chunk], c[lo:lo+chunk]) {
						panic("buffers differ")
					}
				}()
			}
			wg.Wait()
			best = max(best, float64(2*chunk*n)/time.Since(start).Seconds())
		}
	}
	return best
}

// workerProc is an `rbee worker` child process.
type workerProc struct {
	cmd *exec.Cmd
	url string
	log *bytes.Buffer
}

// startWorkerProc starts `rbee worker` on model with the benchmark's slots
// and context; extra flags (such as "--slots", "1") override them.
func startWorkerProc(b *testing.B, bin, model string, threads int, extra ...string) *workerProc {
	port := watchFreePort(b)
	args := append([]string{"worker", "--model", model, "--port", strconv.Itoa(port),
		"--slots", strconv.Itoa(workerBenchSlots), "--ctx-size", strconv.Itoa(workerBenchCtx), "--threads", strconv.Itoa(threads)}, extra...)
	cmd := exec.Command(bin, args...)
	log := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	w := &workerProc{cmd: cmd, url: "http://127.0.0.1:" + strconv.Itoa(port), log: log}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		resp, err := http.Get(w.url + "/v1/ready")
		if err == nil {
			var r struct{ Ready bool }
			_ = json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if r.Ready {
				return w
			}
		}
		if time.Now().After(deadline) {
			w.stop(b)
			b.Fatalf("worker not ready after 5 minutes:\n%s", log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (w *workerProc) stop(b *testing.B) { stopChild(b, w.cmd) }

// stopChild interrupts a child process and waits for it, killing it after
// 30 seconds.
func stopChild(b *testing.B, cmd *exec.Cmd) {
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		b.Logf("%s did not stop on SIGINT; killed", cmd.Path)
	}
}

// streams runs n concurrent native streams of tokens tokens each. The
// decode rate is the steady state: between the moment every stream had its
// first token and the moment the first stream ended, each stream's own rate
// (its tokens in that window, over the time between the first and the last
// of them), summed over the streams. Summing per-stream rates counts every
// step once for every stream: a window cut at one stream's last token would
// leave out the other streams' tokens of that same step, which arrive a few
// microseconds later. The end-to-end rate counts all tokens from the first
// request to the last token.
func (w *workerProc) streams(b *testing.B, n, tokens int) workerRates {
	stamps := make([][]time.Time, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stamps[i] = make([]time.Time, 0, tokens)
			body := fmt.Sprintf(`{"prompt":%q,"max_tokens":%d,"seed":1,"ignore_eos":true,"cache_prompt":false}`, workerBenchPrompt, tokens)
			resp, err := http.Post(w.url+"/v1/inference", "application/json", strings.NewReader(body))
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs[i] = fmt.Errorf("status %d", resp.StatusCode)
				return
			}
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if bytes.HasPrefix(sc.Bytes(), []byte(`data: {"type":"token"`)) {
					stamps[i] = append(stamps[i], time.Now())
				}
			}
			errs[i] = sc.Err()
		}()
	}
	wg.Wait()
	var from, to, end time.Time // latest first token, earliest last token, latest last token
	for i, ts := range stamps {
		if errs[i] != nil || len(ts) != tokens {
			b.Fatalf("stream %d: %d tokens, err %v\nworker log:\n%s", i, len(ts), errs[i], w.log.String())
		}
		if ts[0].After(from) {
			from = ts[0]
		}
		last := ts[len(ts)-1]
		if to.IsZero() || last.Before(to) {
			to = last
		}
		if last.After(end) {
			end = last
		}
	}
	decode := 0.0
	for i, ts := range stamps {
		var first, last time.Time
		count := 0
		for _, t := range ts {
			if t.Before(from) || t.After(to) {
				continue
			}
			if count == 0 {
				first = t
			}
			last, count = t, count+1
		}
		if count < 2 || !last.After(first) {
			b.Fatalf("stream %d has %d tokens while all %d streams generated (from %v to %v)", i, count, n, from, to)
		}
		decode += float64(count-1) / last.Sub(first).Seconds()
	}
	return workerRates{
		decode: decode,
		e2e:    float64(n*tokens) / end.Sub(start).Seconds(),
	}
}

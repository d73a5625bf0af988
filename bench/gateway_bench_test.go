package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/applier"
	"github.com/rbee-dev/rbee/engine/cpu"
	"github.com/rbee-dev/rbee/gateway"
	"github.com/rbee-dev/rbee/internal/testsshd"
	"github.com/rbee-dev/rbee/state"
)

// Settings of the gateway benchmark.
const (
	gwRuns         = 7                       // interleaved time-to-first-token runs of each path
	gwDecodeTokens = 32                      // tokens of each stream of the aggregate decode test
	gwDecodeRuns   = 5                       // interleaved aggregate decode runs of each path
	gwPollSettle   = 1500 * time.Millisecond // > the gateway's worker poll interval (1 s)
	gwOverload     = 30 * time.Second        // how long the overload test runs
	gwTurns        = 4                       // turns of each multi-turn conversation
	gwChats        = 8                       // conversations
)

// BenchmarkGateway measures rbee gateway on a fleet brought up with `rbee
// apply` on this machine (2 workers × 4 slots of the TinyLlama-shaped Q4_0
// synth model: 8 slots, so each of the 8 conversations of part 4 can keep
// its prompt cached in one slot between turns), in one run:
//  1. time to first token of a short prompt through the gateway ÷ straight to
//     a worker (goal ≤ 1.02);
//  2. aggregate decode tok/s of 4 concurrent streams through the gateway ÷ the
//     same 4 sent straight to the workers (goal ≥ 0.98);
//  3. overload: 4× as many clients as slots for 30 s, no errors, queue wait
//     p50/p99 and completed requests per client max ÷ min (goal ≤ 1.5);
//  4. multi-turn: 8 conversations × 4 turns, mean time to first token with
//     prefix affinity ÷ without (goal ≤ 0.5 once the engine keeps prompts).
func BenchmarkGateway(b *testing.B) {
	bin := rbeeBinary(b)
	model := benchModel(b, bin)
	dir := b.TempDir()
	gatewayBenchFleet(b, bin, dir, model)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := state.Open(ctx, filepath.Join(dir, ".rbee"), state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	snap, err := st.Snapshot(ctx)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := applier.NewTokens(st.Dir()).Get("local")
	if err != nil {
		b.Fatal(err)
	}
	var workers []string
	workerURL := map[string]string{} // by the name the gateway gives a worker
	for a, w := range snap.Workers {
		workers = append(workers, w.URL)
		workerURL[a.String()] = w.URL
	}
	slices.Sort(workers)
	affine := startGateway(ctx, b, st, false)
	plain := startGateway(ctx, b, st, true)
	// Sub-benchmarks, so that one part runs alone:
	// -bench 'BenchmarkGateway/multi-turn'.
	parts := []struct {
		name string
		run  func(b *testing.B)
	}{
		{"ttft", func(b *testing.B) { ttftRatio(b, affine, workerURL, tok) }},
		{"decode", func(b *testing.B) { decodeRatio(b, affine, workers, tok) }},
		{"overload", func(b *testing.B) { overload(b, affine) }},
		{"multi-turn", func(b *testing.B) { multiTurn(b, affine, plain) }},
	}
	for _, p := range parts {
		b.Run(p.name, func(b *testing.B) {
			for range b.N {
				p.run(b)
			}
		})
	}
}

// gatewayBenchFleet applies 2 workers × 4 slots, each on half the cores;
// destroyed at the end.
func gatewayBenchFleet(b *testing.B, bin, dir, model string) {
	port, err := testsshd.FreePort("127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	cfg := filepath.Join(dir, "rbee.hcl")
	// Each worker gets half the cores: two workers whose llama.cpp threads
	// outnumber the cores spin at each other's barriers and decode a tenth
	// as fast.
	threads := max(1, cpu.PhysicalCores()/2)
	body := fmt.Sprintf("node \"local\" {\n  connection = \"local\"\n  hive_port  = %d\n}\nmodel \"bench\" {\n  source = \"file://%s\"\n}\n"+
		"pool \"bench\" {\n  model    = \"bench\"\n  nodes    = [\"local\"]\n  replicas = 2\n  slots    = 4\n  ctx_size = 2048\n  threads  = %d\n}\n", port, model, threads)
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
}

// startGateway serves a gateway in this process on a free port and returns
// its URL once it sees the workers.
func startGateway(ctx context.Context, b *testing.B, st *state.Store, noAffinity bool) string {
	g, err := gateway.New(gateway.Options{State: st, Queue: 1000, QueueTimeout: 5 * time.Minute, NoPrefixAffinity: noAffinity})
	if err != nil {
		b.Fatal(err)
	}
	port, err := testsshd.FreePort("127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	go func() { _ = g.Serve(ctx, addr) }()
	url := "http://" + addr
	deadline := time.Now().Add(time.Minute)
	for {
		if resp, err := http.Get(url + "/v1/models"); err == nil {
			resp.Body.Close()
			select {
			case <-g.Ready():
				return url
			default:
			}
		}
		if time.Now().After(deadline) {
			b.Fatal("the gateway did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// streamed is how one streamed completion went.
type streamed struct {
	ttft   time.Duration // to the first token chunk
	tokens int           // token chunks
	worker string        // the worker that answered, as the gateway names it
}

// stream sends a streamed completion to base (a gateway or a worker) and
// reads the answer to its end, as an SDK does (so the connection is kept).
func stream(base, token, model, prompt string, n int) (streamed, error) {
	var out streamed
	body := fmt.Sprintf(`{"model":%q,"prompt":%q,"max_tokens":%d,"temperature":0,"seed":1,"ignore_eos":true,"stream":true}`, model, prompt, n)
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("%s answered %s", base, resp.Status)
	}
	out.worker = resp.Header.Get(gateway.HeaderWorker)
	done := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "data: {") && strings.Contains(line, `"finish_reason":null`) {
			if out.tokens == 0 {
				out.ttft = time.Since(start)
			}
			out.tokens++
		}
		done = done || line == "data: [DONE]"
	}
	if !done {
		return out, fmt.Errorf("the stream from %s ended before [DONE]", base)
	}
	return out, nil
}

// ttftRatio compares the time to first token through the gateway with the
// same request sent straight to the worker the gateway chose (prefix
// affinity keeps choosing it), one of each back to back, alternating which
// goes first.
func ttftRatio(b *testing.B, gw string, workerURL map[string]string, token string) {
	first, err := stream(gw, "", "bench", inferPrompt, 2)
	if err != nil {
		b.Fatal(err)
	}
	worker, ok := workerURL[first.worker]
	if !ok {
		b.Fatalf("the gateway named worker %q, which the state does not have", first.worker)
	}
	bases, tokens := []string{worker, gw}, []string{token, ""} // direct, through the gateway
	var direct, through []float64
	for i := range gwRuns + 1 {
		var got [2]float64
		for k := range bases {
			p := (i + k) % 2
			r, err := stream(bases[p], tokens[p], "bench", inferPrompt, 2)
			if err != nil {
				b.Fatal(err)
			}
			got[p] = millis(r.ttft)
		}
		if i > 0 {
			direct, through = append(direct, got[0]), append(through, got[1])
		}
	}
	md, mg, paired := median(direct), median(through), medianRatio(through, direct)
	b.ReportMetric(paired, "gateway/direct-ttft")
	b.Logf("time to first token, median of %d (load average %s): direct %.1f ms, through the gateway %.1f ms: %.3f×; paired (median of each run's two, back to back) %.3f× (goal ≤ 1.02)",
		gwRuns, loadAverage(), md, mg, mg/md, paired)
}

// concurrentRuns numbers the runs of concurrent.
var concurrentRuns atomic.Int64

// concurrent runs n streams at once, to the targets in turn, and returns
// the tokens per second of all of them together. Every run has prompts of
// its own, so that no worker holds one in its cache: a direct run sends
// stream i to worker i mod 2 every time, the gateway need not, and a cached
// prompt saves a prefill the other path pays.
func concurrent(b *testing.B, targets []string, token string, n int) float64 {
	var wg sync.WaitGroup
	var mu sync.Mutex
	tokens := 0
	run := concurrentRuns.Add(1)
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prompt := fmt.Sprintf("Run %03d, story %d: once upon a time", run, i)
			r, err := stream(targets[i%len(targets)], token, "bench", prompt, gwDecodeTokens)
			if err != nil {
				b.Error(err)
			}
			mu.Lock()
			tokens += r.tokens
			mu.Unlock()
		}()
	}
	wg.Wait()
	return float64(tokens) / time.Since(start).Seconds()
}

func decodeRatio(b *testing.B, gw string, workers []string, token string) {
	// The gateway counts slots busy with requests it did not send (direct
	// ones) from its once-a-second poll of each worker: right after a direct
	// run it may still count one worker's as busy and send three streams to
	// the other. Every run therefore starts after a poll has seen the one
	// before it end, so both paths also start from the same idle machine.
	run := func(targets []string, token string) float64 {
		time.Sleep(gwPollSettle)
		return concurrent(b, targets, token, 4)
	}
	var direct, through []float64
	for i := range gwDecodeRuns {
		var d, g float64
		if i%2 == 0 { // alternate which goes first
			d = run(workers, token)
			g = run([]string{gw}, "")
		} else {
			g = run([]string{gw}, "")
			d = run(workers, token)
		}
		direct, through = append(direct, d), append(through, g)
	}
	md, mg, paired := median(direct), median(through), medianRatio(through, direct)
	b.ReportMetric(paired, "gateway/direct-decode")
	b.Logf("aggregate decode, 4 streams × %d tokens on 2 workers × 4 slots, median of %d: direct %.1f tok/s, through the gateway %.1f tok/s: %.3f×; paired %.3f× (goal ≥ 0.98)",
		gwDecodeTokens, gwDecodeRuns, md, mg, mg/md, paired)
}

func overload(b *testing.B, gw string) {
	const clients = 32 // 4× the 8 slots
	done := make([]int, clients)
	var waits []float64
	var mu sync.Mutex
	errs := 0
	end := time.Now().Add(gwOverload)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				r, err := stream(gw, "", "bench", fmt.Sprintf("Client %d asks: once upon a time", c), 4)
				mu.Lock()
				if err != nil {
					errs++
				} else {
					done[c]++
					waits = append(waits, millis(r.ttft))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(waits)
	pct := func(p float64) float64 {
		if len(waits) == 0 {
			return 0
		}
		return waits[min(len(waits)-1, int(p*float64(len(waits))))]
	}
	lo, hi := slices.Min(done), slices.Max(done)
	fair := float64(hi) / float64(max(lo, 1))
	b.ReportMetric(float64(errs), "overload-errors")
	b.ReportMetric(fair, "overload-max/min")
	b.Logf("overload, %d clients on 8 slots for %s: %d requests, %d errors; time to first token (queue wait included) p50 %.0f ms, p99 %.0f ms; completed per client %d to %d: max/min %.2f (goal ≤ 1.5)",
		clients, gwOverload, len(waits), errs, pct(0.5), pct(0.99), lo, hi, fair)
}

// thinkTime is how long the user of conversation id reads before the next
// turn: 0 to 1.5 s, fixed per conversation and turn. Without it the
// conversations run in lockstep, and "most free slots" sends each one back
// to the worker it has just left (the slot it freed is the free one), which
// no real traffic does.
func thinkTime(id, turn int) time.Duration {
	return time.Duration((id*7919+turn*104729)%1500) * time.Millisecond
}

// conversation runs one multi-turn chat through gw and returns the time to
// first token of each turn after the first.
func conversation(gw string, id int) ([]float64, error) {
	history := fmt.Sprintf("Conversation %d. The user and the assistant talk about a village at the edge of a great forest, its people, and the stories they tell.", id)
	var out []float64
	for turn := range gwTurns {
		if turn > 0 {
			time.Sleep(thinkTime(id, turn))
		}
		history += fmt.Sprintf("\nUser: tell me more, part %d.\nAssistant:", turn)
		r, err := stream(gw, "", "bench", history, 8)
		if err != nil {
			return nil, err
		}
		if turn > 0 {
			out = append(out, millis(r.ttft))
		}
		history += " and so the story goes on."
	}
	return out, nil
}

// multiTurn runs the conversations through the gateway with prefix affinity
// and through the one without it, twice each, interleaved; every run has
// conversations of its own, so that none starts with a turn cached.
func multiTurn(b *testing.B, affine, plain string) {
	mean := func(gw string, run int) float64 {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var all []float64
		for c := range gwChats {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t, err := conversation(gw, run*gwChats+c)
				if err != nil {
					b.Error(err)
				}
				mu.Lock()
				all = append(all, t...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		s := 0.0
		for _, x := range all {
			s += x
		}
		return s / float64(max(len(all), 1))
	}
	var with, without []float64
	for r := range 2 {
		without = append(without, mean(plain, 2*r))
		with = append(with, mean(affine, 2*r+1))
	}
	w, wo := (with[0]+with[1])/2, (without[0]+without[1])/2
	b.ReportMetric(w/wo, "affinity/plain-ttft")
	b.Logf("multi-turn, %d conversations × %d turns on 2 workers, 2 runs each: mean time to first token of later turns with prefix affinity %.0f ms (%.0f, %.0f), without (most free slots) %.0f ms (%.0f, %.0f): %.3f× (goal ≤ 0.5 once the engine keeps prompts)",
		gwChats, gwTurns, w, with[0], with[1], wo, without[0], without[1], w/wo)
}

package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/engine/cpu"
)

// Sizes of the backend benchmark.
const (
	backendBenchCtx    = 512
	backendBenchTokens = 32
	// backendBenchPromptRepeat makes a prompt of about 130 tokens.
	backendBenchPromptRepeat = 10
	backendBenchBaseline     = "haswell" // the x86-64-v3 level, as a ggml CPU library
)

// The in-process engines of the other benchmarks (their bare-loop
// baselines) load the ggml libraries beside the binary under test, as its
// workers do, so that both sides of a ratio run the same kernels.
func init() {
	if bin := os.Getenv("RBEE_BIN"); bin != "" {
		if _, set := os.LookupEnv(cpu.LibraryPathEnv); !set {
			os.Setenv(cpu.LibraryPathEnv, filepath.Join(filepath.Dir(bin), cpu.LibraryFolder))
		}
	}
}

// BenchmarkBackend measures, on the TinyLlama-shaped Q4_0 synth model, what
// runtime CPU dispatch buys: prefill and decode tokens/s of a worker that
// loads the best CPU library of the library folder beside $RBEE_BIN ÷ a
// worker of the same binary limited to the haswell (x86-64-v3) library, in
// the same run (target: prefill ≥ 1.2× on an AVX-512 CPU). Requests go to
// the two workers in turn, one at a time; each figure is the median of the
// rounds (5, or $RBEE_BENCH_ROUNDS). Prefill is also given as CPU seconds per
// prompt token of the worker process, which other processes on the machine
// disturb less than wall time. Workers run one thread ($RBEE_BENCH_THREADS
// to change it).
func BenchmarkBackend(b *testing.B) {
	bin := rbeeBinary(b)
	model := benchModel(b, bin)
	libs := filepath.Join(filepath.Dir(bin), cpu.LibraryFolder)
	baseline := filepath.Join(b.TempDir(), "v3", cpu.LibraryFolder)
	if err := limitedLibraryFolder(libs, baseline, backendBenchBaseline); err != nil {
		b.Fatalf("%v (just build makes %s with the haswell library)", err, libs)
	}
	// One thread each: a step's threads wait for each other at every
	// operation, so on a shared machine several threads measure the other
	// processes as much as the kernels, and their spinning inflates the CPU time.
	threads := 1
	if n, err := strconv.Atoi(os.Getenv("RBEE_BENCH_THREADS")); err == nil && n > 0 {
		threads = n
	}
	report := func(format string, args ...any) {
		b.Logf(format, args...)
		fmt.Printf("backend bench: "+format+"\n", args...)
	}
	for range b.N {
		best := startBackendWorker(b, bin, model, libs, threads)
		v3 := startBackendWorker(b, bin, model, baseline, threads)
		report("dispatched worker: %s; baseline worker: %s; %d threads; load average %s", best.variant, v3.variant, threads, loadAverage())
		prompt := strings.TrimSpace(strings.Repeat("the little cat sat on a warm mat and looked at the sky ", backendBenchPromptRepeat))
		var bestRuns, v3Runs []backendRun
		for range benchRounds() {
			bestRuns = append(bestRuns, best.run(b, prompt))
			v3Runs = append(v3Runs, v3.run(b, prompt))
		}
		best.stop(b)
		v3.stop(b)
		bp, vp := medianOf(bestRuns, backendRun.prefill), medianOf(v3Runs, backendRun.prefill)
		bd, vd := medianOf(bestRuns, backendRun.decode), medianOf(v3Runs, backendRun.decode)
		bc, vc := medianOf(bestRuns, backendRun.cpuPerToken), medianOf(v3Runs, backendRun.cpuPerToken)
		report("prefill (%d tokens): %s %.1f tok/s, %s %.1f tok/s: %.2f× (target ≥ 1.2×)", bestRuns[0].promptTokens, best.variant, bp, v3.variant, vp, bp/vp)
		report("decode (%d tokens): %s %.1f tok/s, %s %.1f tok/s: %.2f×", backendBenchTokens, best.variant, bd, v3.variant, vd, bd/vd)
		report("prefill CPU time per token: %s %.2f ms, %s %.2f ms: %.2f× less", best.variant, bc*1000, v3.variant, vc*1000, vc/bc)
		report("rounds (prefill/decode tok/s): %s: %s; %s: %s", best.variant, roundsString(bestRuns), v3.variant, roundsString(v3Runs))
		report("load average after: %s", loadAverage())
		b.ReportMetric(bp/vp, "prefill-x")
		b.ReportMetric(bd/vd, "decode-x")
	}
}

// limitedLibraryFolder makes dst a library folder holding only the base
// library and the CPU library variant of src.
func limitedLibraryFolder(src, dst, variant string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, f := range []string{"libggml-base.so.0", "libggml-cpu-" + variant + ".so"} {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, f), data, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// backendWorker is a one-slot worker loading from one library folder.
type backendWorker struct {
	*workerProc
	variant string
}

func startBackendWorker(b *testing.B, bin, model, libs string, threads int) backendWorker {
	port := watchFreePort(b)
	cmd := exec.Command(bin, "worker", "--model", model, "--port", strconv.Itoa(port),
		"--slots", "1", "--ctx-size", strconv.Itoa(backendBenchCtx), "--threads", strconv.Itoa(threads))
	cmd.Env = append(os.Environ(), cpu.LibraryPathEnv+"="+libs)
	log := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	w := backendWorker{workerProc: &workerProc{cmd: cmd, url: "http://127.0.0.1:" + strconv.Itoa(port), log: log}}
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		var r workerapi.Ready
		if resp, err := http.Get(w.url + "/v1/ready"); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
		}
		if r.Ready {
			w.variant = r.CPUVariant
			return w
		}
		if time.Now().After(deadline) {
			w.stop(b)
			b.Fatalf("worker not ready after 5 minutes:\n%s", log.String())
		}
	}
}

// backendRun is one request's figures.
type backendRun struct {
	promptTokens int
	promptTime   time.Duration
	decodeTokens int
	decodeTime   time.Duration
	cpu          time.Duration // the worker's CPU time during the request
}

func (r backendRun) prefill() float64 { return float64(r.promptTokens) / r.promptTime.Seconds() }
func (r backendRun) decode() float64  { return float64(r.decodeTokens) / r.decodeTime.Seconds() }

// cpuPerToken is CPU seconds per prompt token, the decode's share taken out
// in proportion to wall time.
func (r backendRun) cpuPerToken() float64 {
	share := r.promptTime.Seconds() / (r.promptTime + r.decodeTime).Seconds()
	return r.cpu.Seconds() * share / float64(r.promptTokens)
}

// run sends the prompt uncached and reads the end event's timings.
func (w backendWorker) run(b *testing.B, prompt string) backendRun {
	before := processCPU(w.cmd.Process.Pid)
	body := fmt.Sprintf(`{"prompt":%q,"max_tokens":%d,"seed":1,"ignore_eos":true,"cache_prompt":false}`, prompt, backendBenchTokens)
	resp, err := http.Post(w.url+"/v1/inference", "application/json", strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var end workerapi.Event
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: ")); ok && bytes.Contains(data, []byte(`"type":"end"`)) {
			if err := json.Unmarshal(data, &end); err != nil {
				b.Fatal(err)
			}
		}
	}
	if end.PromptTokens == 0 || end.PromptTimeMS == 0 || end.DecodeTimeMS == 0 {
		b.Fatalf("no timings in the end event (%+v)\nworker log:\n%s", end, w.log.String())
	}
	return backendRun{
		promptTokens: end.PromptTokens, promptTime: time.Duration(end.PromptTimeMS) * time.Millisecond,
		decodeTokens: end.TokensOut - 1, decodeTime: time.Duration(end.DecodeTimeMS) * time.Millisecond,
		cpu: processCPU(w.cmd.Process.Pid) - before,
	}
}

// processCPU is the user + system CPU time of process pid (Linux; 0 elsewhere).
func processCPU(pid int) time.Duration {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses.
	_, rest, _ := bytes.Cut(data, []byte(") "))
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}

func medianOf(runs []backendRun, f func(backendRun) float64) float64 {
	xs := make([]float64, len(runs))
	for i, r := range runs {
		xs[i] = f(r)
	}
	return median(xs)
}

func roundsString(runs []backendRun) string {
	parts := make([]string, len(runs))
	for i, r := range runs {
		parts[i] = fmt.Sprintf("%.0f/%.1f", r.prefill(), r.decode())
	}
	return strings.Join(parts, " ")
}

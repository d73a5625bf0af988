package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/engine/cpu"
)

// Sizes of the peer benchmark.
const (
	peerCtx     = 1024 // per slot, both servers
	peerDecode  = 128  // tokens per decode run
	peerReply   = 16   // tokens per chat turn
	peerPrefixN = 8    // sentences of cacheBenchText in the shared prefix (≈450 tokens)
)

// BenchmarkOllamaPeer runs the rbee worker and Ollama (built by
// scripts/ollama-peer.sh from the ollama module version rbee pins, with the
// same cgo flags and the same ggml CPU libraries) side by side on the same
// GGUF file, one slot each, the same threads, each through its own HTTP API
// (rbee's native stream, Ollama's /api/generate with raw prompts):
//
//  1. single-stream decode tok/s, timed by the client between the first and
//     the last streamed token: rbee ÷ Ollama (target ≥ 1.0);
//  2. a chat's second turn against its first, ≈450-token shared prefix: time
//     to first token of the second turn ÷ the first (target ≤ 0.1), for each.
//
// RBEE_OLLAMA_BIN names an Ollama binary to use instead; without one that
// builds or runs, the benchmark is skipped and says why.
func BenchmarkOllamaPeer(b *testing.B) {
	bin := rbeeBinary(b)
	model, _ := filepath.Abs(benchModel(b, bin))
	threads := cpu.PhysicalCores()
	report := func(format string, args ...any) {
		b.Logf(format, args...)
		fmt.Printf("peer bench: "+format+"\n", args...)
	}
	oll := startOllama(b, bin, model, threads)
	defer oll.stop(b)
	wk := startWorkerProc(b, bin, model, threads, "--slots", "1", "--ctx-size", strconv.Itoa(peerCtx))
	defer wk.stop(b)
	servers := []peerServer{rbeePeer{wk.url}, oll}
	prefix := strings.Repeat(cacheBenchText, peerPrefixN)
	report("model %s, %d threads, 1 slot, ctx %d; Ollama %s; load average before: %s", model, threads, peerCtx, oll.version, loadAverage())
	for range b.N {
		rounds := benchRounds()
		decode := make([][]float64, len(servers))
		first, second := make([][]float64, len(servers)), make([][]float64, len(servers))
		for r := range rounds {
			for i, s := range servers {
				run := peerGenerate(b, s, workerBenchPrompt, peerDecode, true)
				decode[i] = append(decode[i], run.decodeRate())
				peerGenerate(b, s, "unrelated words to empty the slot", 1, false)
				turn1 := prefix + " Question: what did he see today?"
				t1 := peerGenerate(b, s, turn1, peerReply, false)
				t2 := peerGenerate(b, s, turn1+t1.text+" Question: and what of tomorrow?", peerReply, false)
				first[i], second[i] = append(first[i], millis(t1.ttft)), append(second[i], millis(t2.ttft))
				report("round %d %s: decode %.1f tok/s; time to first token: first turn %.1f ms, second turn %.1f ms",
					r+1, s.name(), run.decodeRate(), millis(t1.ttft), millis(t2.ttft))
			}
		}
		report("load average after: %s", loadAverage())
		report("decode tok/s, one stream: rbee %.1f, Ollama %.1f; rbee ÷ Ollama %.3f (target ≥ 1.0); medians of %d rounds",
			median(decode[0]), median(decode[1]), median(decode[0])/median(decode[1]), rounds)
		report("second turn ÷ first turn, time to first token: rbee %.3f (target ≤ 0.1), Ollama %.3f",
			median(second[0])/median(first[0]), median(second[1])/median(first[1]))
	}
}

// peerServer is one side of the comparison: how to ask it for a stream.
type peerServer interface {
	name() string
	request(prompt string, tokens int, ignoreEOS bool) (*http.Request, error)
	// token reads one streamed line: the text it carries and whether it is a token.
	token(line []byte) (string, bool)
}

// peerRun is what the client saw of one streamed generation.
type peerRun struct {
	ttft   time.Duration
	stamps []time.Time
	text   string
}

func (r peerRun) decodeRate() float64 {
	n := len(r.stamps)
	if n < 2 {
		return 0
	}
	return float64(n-1) / r.stamps[n-1].Sub(r.stamps[0]).Seconds()
}

func peerGenerate(b *testing.B, s peerServer, prompt string, tokens int, ignoreEOS bool) peerRun {
	req, err := s.request(prompt, tokens, ignoreEOS)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatalf("%s: %v", s.name(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		b.Fatalf("%s: status %d: %s", s.name(), resp.StatusCode, body)
	}
	var run peerRun
	var text strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if t, ok := s.token(sc.Bytes()); ok {
			now := time.Now()
			if run.stamps == nil {
				run.ttft = now.Sub(start)
			}
			run.stamps = append(run.stamps, now)
			text.WriteString(t)
		}
	}
	if err := sc.Err(); err != nil {
		b.Fatalf("%s: %v", s.name(), err)
	}
	run.text = text.String()
	return run
}

// rbeePeer is an rbee worker's native API.
type rbeePeer struct{ url string }

func (rbeePeer) name() string { return "rbee" }

func (p rbeePeer) request(prompt string, tokens int, ignoreEOS bool) (*http.Request, error) {
	body, _ := json.Marshal(map[string]any{"prompt": prompt, "max_tokens": tokens, "temperature": 0, "seed": 1, "ignore_eos": ignoreEOS})
	return http.NewRequest(http.MethodPost, p.url+"/v1/inference", bytes.NewReader(body))
}

func (rbeePeer) token(line []byte) (string, bool) {
	data, ok := bytes.CutPrefix(line, []byte("data: "))
	if !ok {
		return "", false
	}
	var ev struct{ Type, Text string }
	if json.Unmarshal(data, &ev) != nil || ev.Type != "token" {
		return "", false
	}
	return ev.Text, true
}

// ollamaPeer is an `ollama serve` child process with the model created in it.
type ollamaPeer struct {
	cmd     *exec.Cmd
	url     string
	log     *lockedBuffer
	threads int
	version string
}

func (ollamaPeer) name() string { return "Ollama" }

func (o *ollamaPeer) request(prompt string, tokens int, ignoreEOS bool) (*http.Request, error) {
	opts := map[string]any{"num_ctx": peerCtx, "num_thread": o.threads, "num_predict": tokens, "temperature": 0, "seed": 1}
	body, _ := json.Marshal(map[string]any{"model": "peer", "prompt": prompt, "raw": true, "stream": true, "keep_alive": -1, "options": opts})
	_ = ignoreEOS // Ollama has no such option; a random-weight model rarely samples its end token
	return http.NewRequest(http.MethodPost, o.url+"/api/generate", bytes.NewReader(body))
}

func (*ollamaPeer) token(line []byte) (string, bool) {
	var ev struct {
		Response string
		Done     bool
	}
	if json.Unmarshal(line, &ev) != nil || ev.Done {
		return "", false
	}
	return ev.Response, true
}

func (o *ollamaPeer) stop(b *testing.B) { stopChild(b, o.cmd) }

// ollamaBinary is $RBEE_OLLAMA_BIN, or the one scripts/ollama-peer.sh builds
// (once; cached afterwards), and its version.
func ollamaBinary(b *testing.B) (string, string) {
	if p := os.Getenv("RBEE_OLLAMA_BIN"); p != "" {
		return p, "from RBEE_OLLAMA_BIN"
	}
	b.Logf("building the Ollama peer (scripts/ollama-peer.sh; once, cached afterwards)")
	cmd := exec.Command("bash", "scripts/ollama-peer.sh")
	cmd.Dir, cmd.Stderr = "..", os.Stderr
	out, err := cmd.Output()
	if err != nil {
		b.Skipf("no Ollama peer: scripts/ollama-peer.sh: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	path := lines[len(lines)-1]
	return path, filepath.Base(filepath.Dir(path))
}

// startOllama starts `ollama serve` in a folder of its own, with the ggml
// CPU libraries of the rbee binary beside it (Ollama looks for lib/ollama
// next to its executable), and creates the model "peer" from the GGUF file.
func startOllama(b *testing.B, rbeeBin, model string, threads int) *ollamaPeer {
	src, version := ollamaBinary(b)
	dir := b.TempDir()
	exe := filepath.Join(dir, "ollama")
	if err := os.Link(src, exe); err != nil {
		if out, err := exec.Command("cp", src, exe).CombinedOutput(); err != nil {
			b.Fatalf("copy %s: %v\n%s", src, err, out)
		}
	}
	if libs := filepath.Join(filepath.Dir(rbeeBin), "lib", "ollama"); dirExists(libs) {
		if out, err := exec.Command("cp", "-r", libs, filepath.Join(dir, "lib")).CombinedOutput(); err != nil {
			b.Fatalf("copy %s: %v\n%s", libs, err, out)
		}
	}
	host := "127.0.0.1:" + strconv.Itoa(watchFreePort(b))
	env := append(os.Environ(), "HOME="+dir, "OLLAMA_HOST="+host, "OLLAMA_MODELS="+filepath.Join(dir, "models"),
		"OLLAMA_NUM_PARALLEL=1", "OLLAMA_MAX_LOADED_MODELS=1", "OLLAMA_KEEP_ALIVE=-1")
	o := &ollamaPeer{cmd: exec.Command(exe, "serve"), url: "http://" + host, log: &lockedBuffer{}, threads: threads, version: version}
	o.cmd.Env, o.cmd.Stdout, o.cmd.Stderr = env, o.log, o.log
	if err := o.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if resp, err := http.Get(o.url); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			o.stop(b)
			b.Fatalf("ollama serve did not answer in a minute:\n%s", o.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	modelfile := filepath.Join(dir, "Modelfile")
	if err := os.WriteFile(modelfile, []byte("FROM "+model+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	create := exec.Command(exe, "create", "peer", "-f", modelfile)
	create.Env = env
	if out, err := create.CombinedOutput(); err != nil {
		o.stop(b)
		b.Fatalf("ollama create: %v\n%s\n%s", err, out, o.log)
	}
	peerGenerate(b, o, "warm up", 1, false) // load the model before anything is timed
	return o
}

// lockedBuffer is a bytes.Buffer that a child process writes while the
// benchmark reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func dirExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

package fit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/gguf"
)

const gibibyte = 1 << 30

// load parses a configuration written as HCL, the way rbee reads it.
func load(t *testing.T, hcl string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "rbee.hcl")
	if err := os.WriteFile(path, []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Load(path, config.LoadOptions{StateDir: filepath.Join(dir, ".rbee"), Environ: []string{}})
	if diags.HasErrors() {
		t.Fatalf("configuration: %v", diags)
	}
	return cfg
}

// fleet is two nodes: pool "chat" (2 replicas, 4 slots) on both, pool
// "embed" (1 replica) on a, both of model q3; body is chat's settings.
func fleet(t *testing.T, body string) *config.Config {
	return load(t, fmt.Sprintf(`
node "a" {
  connection = "local"
  hive_port  = 19101
}
node "b" {
  connection = "local"
  hive_port  = 19102
}
model "q3" { source = "synth:qwen3-tiny" }
pool "chat" {
  model    = "q3"
  nodes    = ["a", "b"]
  replicas = 2
  %s
}
pool "embed" {
  model    = "q3"
  nodes    = ["a"]
  slots    = 4
  ctx_size = 2048
}
`, body))
}

// q3 is the real metadata of the qwen3-tiny synth preset.
func q3(t *testing.T) gguf.Metadata {
	t.Helper()
	meta, err := synthMetadata(context.Background(), "qwen3-tiny")
	if err != nil {
		t.Fatal(err)
	}
	return meta
}

func estimate(t *testing.T, meta gguf.Metadata, slots, ctx int) gguf.Memory {
	t.Helper()
	mem, err := meta.Estimate(gguf.Workload{Slots: slots, CtxSize: ctx})
	if err != nil {
		t.Fatal(err)
	}
	return mem
}

func TestNeed(t *testing.T) {
	meta := q3(t)
	m1, m4 := estimate(t, meta, 1, 2048), estimate(t, meta, 4, 2048)
	w := func(pool, model string, replicas int, mem gguf.Memory) worker {
		return worker{pool: &config.Pool{Name: pool, Model: model, Replicas: replicas}, meta: meta, mem: mem}
	}
	own := func(m gguf.Memory) int64 { return m.Total - m.Weights }
	cases := []struct {
		name string
		ws   []worker
		gpu  bool
		want int64
	}{
		{"one worker", []worker{w("chat", "q3", 1, m1)}, false, m1.Total},
		{"replicas on the CPU map the weights once", []worker{w("chat", "q3", 3, m1)}, false, m1.Weights + 3*own(m1)},
		{"two pools of one model share the weights", []worker{w("chat", "q3", 2, m1), w("embed", "q3", 1, m4)}, false,
			m1.Weights + 2*own(m1) + own(m4)},
		{"two models map their own weights", []worker{w("chat", "q3", 1, m1), w("embed", "other", 1, m1)}, false, 2 * m1.Total},
		{"a GPU holds a copy per replica", []worker{w("chat", "q3", 3, m1)}, true, 3 * m1.Total},
		{"repacked matrices are a copy per CPU worker", []worker{repacked(w("chat", "q3", 3, m1), m1.Weights/4)}, false,
			m1.Weights - m1.Weights/4 + 3*(own(m1)+m1.Weights/4)},
		{"a GPU worker's copy includes what the CPU would repack", []worker{repacked(w("chat", "q3", 3, m1), m1.Weights/4)}, true, 3 * m1.Total},
	}
	for _, tc := range cases {
		if got := need(tc.ws, tc.gpu); got != tc.want {
			t.Errorf("%s: need = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// repacked is w on a model of which the CPU backend repacks n bytes.
func repacked(w worker, n int64) worker {
	w.meta.RepackBytes = n
	return w
}

// hive is what a hive reports: its RAM and q3 in its catalog.
func hive(meta gguf.Metadata, total, free, bandwidth int64) *hiveapi.State {
	return &hiveapi.State{
		Resources: hiveapi.Resources{RAMTotal: total, RAMAvailable: free, MemoryBandwidth: bandwidth},
		Models:    []hiveapi.Model{{Name: "q3", Metadata: &meta}},
	}
}

func TestCheckPerNode(t *testing.T) {
	meta := q3(t)
	mem := estimate(t, meta, 4, 2048)
	needA := mem.Weights + 3*(mem.Total-mem.Weights) // chat ×2 and embed ×1 share the weights
	cases := []struct {
		name     string
		hives    map[string]*hiveapi.State
		lines    []string // each appears in the report's lines
		problems []string // each appears in a problem; none when empty
	}{
		{
			name:  "both nodes fit",
			hives: map[string]*hiveapi.State{"a": hive(meta, 8*gibibyte, 6*gibibyte, 0), "b": hive(meta, 4*gibibyte, 4*gibibyte, 0)},
			lines: []string{
				fmt.Sprintf("node.a: RAM %s of 8.0 GiB after apply (3 workers)", gibNum(2*gibibyte+needA)),
				fmt.Sprintf("node.b: RAM %s of 4.0 GiB after apply (2 workers)", gibNum(mem.Weights+2*(mem.Total-mem.Weights))),
			},
		},
		{
			name:  "a node without a hive is unknown",
			hives: map[string]*hiveapi.State{"a": hive(meta, 8*gibibyte, 6*gibibyte, 0)},
			lines: []string{"node.b: memory unknown until the hive is installed (2 workers need about", "apply's preflight decides"},
		},
		{
			name:     "a node short of memory fails with the numbers and what would fit",
			hives:    map[string]*hiveapi.State{"a": hive(meta, 8*gibibyte, needA-1, 0), "b": hive(meta, 4*gibibyte, 4*gibibyte, 0)},
			problems: []string{"node.a: the workers need " + gib(needA) + " of RAM but " + gib(needA-1) + " is available", "would fit with"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Check(context.Background(), Input{Config: fleet(t, "slots = 4\n  ctx_size = 2048"), Hives: tc.hives})
			lines, problems := strings.Join(r.Lines, "\n"), strings.Join(r.Problems, "\n")
			for _, l := range tc.lines {
				if !strings.Contains(lines, l) {
					t.Errorf("lines lack %q:\n%s", l, lines)
				}
			}
			for _, p := range tc.problems {
				if !strings.Contains(problems, p) {
					t.Errorf("problems lack %q:\n%s", p, problems)
				}
			}
			if (len(tc.problems) > 0) != (r.Err() != nil) {
				t.Errorf("Err() = %v with problems:\n%s", r.Err(), problems)
			}
		})
	}
}

// Running workers of the same pools are replaced by apply: the memory they
// hold now counts as available.
func TestRunningWorkersAreFreed(t *testing.T) {
	meta := q3(t)
	mem := estimate(t, meta, 4, 2048)
	needA := mem.Weights + 3*(mem.Total-mem.Weights)
	st := hive(meta, 8*gibibyte, needA-(mem.Total-mem.Weights)/2, 0)
	r := Check(context.Background(), Input{Config: fleet(t, "slots = 4\n  ctx_size = 2048"), Hives: map[string]*hiveapi.State{"a": st}})
	if r.Err() == nil {
		t.Fatalf("without running workers the node should not fit: %q", r.Lines)
	}
	st.Workers = []hiveapi.WorkerStatus{{Pool: "chat", PID: 42}}
	st.Workers[0].Config.CtxSize, st.Workers[0].Config.Slots = 2048, 4
	if r := Check(context.Background(), Input{Config: fleet(t, "slots = 4\n  ctx_size = 2048"), Hives: map[string]*hiveapi.State{"a": st}}); r.Err() != nil {
		t.Errorf("the running chat worker's memory is not counted as freed: %v", r.Err())
	}
}

// Each suggestion, applied alone, fits, and is the largest that does:
// slots one more, or ctx_size twice as large, does not.
func TestSuggestWhatFits(t *testing.T) {
	meta := q3(t)
	cases := []struct {
		name       string
		slots, ctx int
		short      func(mem gguf.Memory) int64 // how much less than the pool needs is available
		want       []string
	}{
		{"the KV cache is over", 8, 4096, func(m gguf.Memory) int64 { return m.KVCache / 2 }, []string{"slots = ", "ctx_size = "}},
		{"the weights are over", 1, 256, func(m gguf.Memory) int64 { return m.Weights / 2 },
			[]string{"a smaller quantization of model.q3 (weights under "}},
	}
	for _, tc := range cases {
		mem := estimate(t, meta, tc.slots, tc.ctx)
		have := mem.Total - tc.short(mem)
		p := &config.Pool{Name: "chat", Model: "q3", Replicas: 1}
		p.Slots, p.CtxSize = tc.slots, tc.ctx
		got := suggest([]worker{{pool: p, meta: meta, mem: mem}}, have, false)
		fits := func(slots, ctx int) bool { return estimate(t, meta, slots, ctx).Total <= have }
		for _, w := range tc.want {
			i := strings.Index(got, w)
			if i < 0 {
				t.Errorf("%s: suggest = %q, want %q", tc.name, got, w)
				continue
			}
			var n int
			if _, err := fmt.Sscanf(got[i+len(w):], "%d", &n); err != nil {
				continue // the quantization names no number of its own
			}
			switch {
			case w == "slots = " && (!fits(n, tc.ctx) || fits(n+1, tc.ctx)):
				t.Errorf("%s: slots = %d is not the most slots that fit in %d bytes", tc.name, n, have)
			case w == "ctx_size = " && (!fits(tc.slots, n) || fits(tc.slots, 2*n)):
				t.Errorf("%s: ctx_size = %d is not the largest halving that fits in %d bytes", tc.name, n, have)
			}
		}
		if strings.Contains(got, "quantization") != strings.Contains(strings.Join(tc.want, ""), "quantization") {
			t.Errorf("%s: suggest = %q, want %q only", tc.name, got, tc.want)
		}
	}
}

func TestDecodeCeiling(t *testing.T) {
	meta := q3(t)
	tps := rate(float64(10e9) / float64(meta.DecodeBytes))
	cases := []struct {
		name  string
		hives map[string]*hiveapi.State
		body  string
		want  string
	}{
		{"the slowest node bounds the pool", map[string]*hiveapi.State{"a": hive(meta, 8*gibibyte, 8*gibibyte, 20e9), "b": hive(meta, 8*gibibyte, 8*gibibyte, 10e9)},
			"", fmt.Sprintf("pool.chat: decode ≤ %s tok/s per stream (10.0 GB/s ÷ %s)", tps, gb(meta.DecodeBytes))},
		{"no measured bandwidth yet", map[string]*hiveapi.State{"a": hive(meta, 8*gibibyte, 8*gibibyte, 0)},
			"", "pool.chat: decode ceiling unknown until the hive is installed"},
		{"a GPU's bandwidth is not measured", map[string]*hiveapi.State{"a": hive(meta, 8*gibibyte, 8*gibibyte, 10e9)},
			`backend = "cuda"`, "pool.chat: decode ceiling unknown: the cuda device's memory bandwidth is not measured"},
	}
	for _, tc := range cases {
		r := Check(context.Background(), Input{Config: fleet(t, tc.body), Hives: tc.hives})
		if lines := strings.Join(r.Lines, "\n"); !strings.Contains(lines, tc.want) {
			t.Errorf("%s: lines lack %q:\n%s", tc.name, tc.want, lines)
		}
	}
}

package hive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/gguf"
)

// TestPreflightMemory refuses a worker whose estimate exceeds what the node
// has, with the estimate's parts in the message and the details.
func TestPreflightMemory(t *testing.T) {
	p := filepath.Join(t.TempDir(), "qwen3.gguf")
	if _, err := gguf.SynthFile(context.Background(), p, "qwen3-tiny", 1); err != nil {
		t.Fatal(err)
	}
	meta, err := gguf.ReadModelMetadata(p)
	if err != nil {
		t.Fatal(err)
	}
	model := hiveapi.Model{Name: "q", Path: p}
	cfg := hiveapi.WorkerConfig{Backend: "cpu", CtxSize: 4096, Slots: 8}
	want, _ := meta.Estimate(gguf.Workload{CtxSize: 4096, Slots: 8})
	// 2 layers × 8 slots × 4096 cells × 2 KV heads × (64 + 64) × 2 bytes:
	// key_length 64, not embedding ÷ heads (32).
	if want.KVCache != 2*8*4096*2*128*2 {
		t.Fatalf("KV cache %d", want.KVCache)
	}
	tests := []struct {
		name     string
		ram      int64
		wantCode string
	}{
		{"fits", want.Total, ""},
		{"one byte short", want.Total - 1, "INSUFFICIENT_RAM"},
		{"unknown RAM is not refused", 0, ""},
	}
	for _, tt := range tests {
		err := preflight(cfg, model, hiveapi.Resources{Backends: []string{"cpu"}, RAMAvailable: tt.ram})
		if tt.wantCode == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Code != tt.wantCode || ae.Details["required_bytes"] != want.Total || ae.Details["kv_cache_bytes"] != want.KVCache ||
			!strings.Contains(ae.Message, "KV cache 32.0 MiB for 4096 ctx × 8 slots") {
			t.Errorf("%s: preflight = %v (details %v)", tt.name, err, ae)
		}
	}
}

// TestPreflightSplitModel estimates a model split in three shards from all
// of them: the same weights and total as the model in one file.
func TestPreflightSplitModel(t *testing.T) {
	dir := t.TempDir()
	one := filepath.Join(dir, "one.gguf")
	if _, err := gguf.SynthFile(context.Background(), one, "qwen3-tiny", 1); err != nil {
		t.Fatal(err)
	}
	p, _ := gguf.LookupPreset("qwen3-tiny")
	paths, err := p.Writer(1).WriteSplit(context.Background(), filepath.Join(dir, "q3"), 10)
	if err != nil {
		t.Fatal(err)
	}
	cfg := hiveapi.WorkerConfig{Backend: "cpu", CtxSize: 512, Slots: 1}
	want, err := estimateWorker(cfg, hiveapi.Model{Name: "one", Path: one}, "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := estimateWorker(cfg, hiveapi.Model{Name: "q3", Path: paths[0]}, "")
	if err != nil {
		t.Fatal(err)
	}
	if got.Weights != want.Weights || got.Total != want.Total || got.Weights < 2_000_000 {
		t.Errorf("split estimate %+v, one file %+v", got, want)
	}
	os.Remove(paths[2])
	if _, err := estimateWorker(cfg, hiveapi.Model{Name: "q3", Path: paths[0]}, ""); err == nil || !strings.Contains(err.Error(), filepath.Base(paths[2])) {
		t.Errorf("a missing shard: %v", err)
	}
}

func TestPreflightBackendsAndRAM(t *testing.T) {
	model := hiveapi.Model{Name: "m", Path: "/nonexistent.gguf", Size: 1 << 30}
	cpuOnly := hiveapi.Resources{Backends: []string{"cpu"}, RAMAvailable: 8 << 30}
	tests := []struct {
		name     string
		cfg      hiveapi.WorkerConfig
		res      hiveapi.Resources
		wantCode string
		wantText string
	}{
		{"metal on this node", hiveapi.WorkerConfig{Backend: "metal"}, cpuOnly, "BACKEND_UNAVAILABLE", "carries no metal backend"},
		{"cpu device 1", hiveapi.WorkerConfig{Backend: "cpu", Device: 1}, cpuOnly, "DEVICE_NOT_FOUND", "device 0"},
		{"unreadable model", hiveapi.WorkerConfig{Backend: "cpu", CtxSize: 2048, Slots: 1}, cpuOnly, "INVALID_MODEL", "cannot be read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := preflight(tt.cfg, model, tt.res)
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Code != tt.wantCode || !strings.Contains(ae.Message, tt.wantText) {
				t.Fatalf("preflight = %v, want %s containing %q", err, tt.wantCode, tt.wantText)
			}
		})
	}
}

// TestPreflightCUDADecision is the decision table for backend = "cuda":
// the hive offers it only with an NVIDIA GPU listed AND the CUDA library in
// the library folder, and its refusal names what is missing. With both, the
// device and VRAM rules apply and an unreadable model is the next refusal
// (the backend was accepted).
func TestPreflightCUDADecision(t *testing.T) {
	model := hiveapi.Model{Name: "m", Path: "/nonexistent.gguf", Size: 1 << 30}
	gpu := []hiveapi.GPU{{Index: 0, Backend: "cuda", VRAMFree: 1 << 30}}
	const lib = "/opt/rbee/bin/lib/ollama/libggml-cuda.so"
	const noGPU, noLib = "no NVIDIA GPU is listed", "libggml-cuda.so is not in the library folder"
	tests := []struct {
		name      string
		gpus      []hiveapi.GPU
		cudaLib   string
		cfg       hiveapi.WorkerConfig
		wantCode  string
		wantText  []string
		wantNotIn string
	}{
		{"neither GPU nor library", nil, "", hiveapi.WorkerConfig{Backend: "cuda"}, "BACKEND_UNAVAILABLE", []string{noGPU, noLib, "never runs a cuda pool on the CPU"}, ""},
		{"a GPU, no library", gpu, "", hiveapi.WorkerConfig{Backend: "cuda"}, "BACKEND_UNAVAILABLE", []string{noLib, "just build-cuda"}, noGPU},
		{"the library, no GPU", nil, lib, hiveapi.WorkerConfig{Backend: "cuda"}, "BACKEND_UNAVAILABLE", []string{noGPU}, noLib},
		{"both: device 3 of 1", gpu, lib, hiveapi.WorkerConfig{Backend: "cuda", Device: 3}, "DEVICE_NOT_FOUND", []string{"devices: [0]"}, ""},
		{"both: the model is read next", gpu, lib, hiveapi.WorkerConfig{Backend: "cuda", CtxSize: 2048, Slots: 1}, "INVALID_MODEL", []string{"cannot be read"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := hiveapi.Resources{GPUs: tt.gpus, CUDALibrary: tt.cudaLib, Backends: backends(tt.gpus, tt.cudaLib), RAMAvailable: 8 << 30}
			err := preflight(tt.cfg, model, res)
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Code != tt.wantCode {
				t.Fatalf("preflight = %v, want %s", err, tt.wantCode)
			}
			for _, want := range tt.wantText {
				if !strings.Contains(ae.Message, want) {
					t.Errorf("message %q lacks %q", ae.Message, want)
				}
			}
			if tt.wantNotIn != "" && strings.Contains(ae.Message, tt.wantNotIn) {
				t.Errorf("message %q names %q, which is not missing", ae.Message, tt.wantNotIn)
			}
		})
	}
}

// TestCUDALibraryInFolder: the hive sees the CUDA library only as a regular
// file named libggml-cuda.so in the library folder.
func TestCUDALibraryInFolder(t *testing.T) {
	dir := t.TempDir()
	if got := cudaLibrary(dir); got != "" {
		t.Errorf("empty folder: %q", got)
	}
	if err := os.Mkdir(filepath.Join(dir, cudaLibraryName), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := cudaLibrary(dir); got != "" {
		t.Errorf("a folder named like the library: %q", got)
	}
	other := t.TempDir()
	p := filepath.Join(other, cudaLibraryName)
	if err := os.WriteFile(p, []byte("ELF"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := cudaLibrary(other); got != p {
		t.Errorf("cudaLibrary = %q, want %q", got, p)
	}
}

// A catalogued file replaced by something else is refused without showing
// what it now holds.
func TestPreflightNeverEchoesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(p, []byte("root:x:0:0:secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := preflight(hiveapi.WorkerConfig{Backend: "cpu", CtxSize: 512, Slots: 1}, hiveapi.Model{Name: "m", Path: p, Size: 18}, hiveapi.Resources{Backends: []string{"cpu"}})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != "INVALID_MODEL" || !strings.Contains(ae.Message, "magic bytes") || strings.Contains(ae.Message, "root") {
		t.Fatalf("preflight = %v, want INVALID_MODEL without the file's bytes", err)
	}
}

func TestValidateWorker(t *testing.T) {
	ok := hiveapi.WorkerConfig{Model: "tiny"}.Normalized()
	tests := []struct {
		name  string
		id    string
		mod   func(c *hiveapi.WorkerConfig)
		field string
	}{
		{"valid", "chat-0", func(*hiveapi.WorkerConfig) {}, ""},
		{"bad id", "Chat_0", func(*hiveapi.WorkerConfig) {}, "INVALID_NAME"},
		{"id too long", strings.Repeat("a", 65), func(*hiveapi.WorkerConfig) {}, "INVALID_NAME"},
		{"bad model", "w", func(c *hiveapi.WorkerConfig) { c.Model = "../x" }, "model"},
		{"zero slots after normalize is impossible; negative", "w", func(c *hiveapi.WorkerConfig) { c.Slots = -1 }, "slots"},
		{"too many slots", "w", func(c *hiveapi.WorkerConfig) { c.Slots = 65 }, "slots"},
		{"tiny ctx", "w", func(c *hiveapi.WorkerConfig) { c.CtxSize = 8 }, "ctx_size"},
		{"huge ctx", "w", func(c *hiveapi.WorkerConfig) { c.CtxSize = 1<<20 + 1 }, "ctx_size"},
		{"negative threads", "w", func(c *hiveapi.WorkerConfig) { c.Threads = -2 }, "threads"},
		{"bad backend", "w", func(c *hiveapi.WorkerConfig) { c.Backend = "rocm" }, "backend"},
		{"bad device", "w", func(c *hiveapi.WorkerConfig) { c.Device = -1 }, "device"},
		{"bad idle timeout", "w", func(c *hiveapi.WorkerConfig) { c.IdleTimeout = "soon" }, "idle_timeout"},
		{"negative load timeout", "w", func(c *hiveapi.WorkerConfig) { c.LoadTimeout = "-1s" }, "load_timeout"},
		{"bad pool", "w", func(c *hiveapi.WorkerConfig) { c.Pool = "Chat Pool" }, "pool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			err := validateWorker(tt.id, c)
			if tt.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ae *api.Error
			if !errors.As(err, &ae) {
				t.Fatalf("validateWorker = %v, want an error about %s", err, tt.field)
			}
			if ae.Code != tt.field && ae.Details["field"] != tt.field {
				t.Errorf("error %v (details %v) is not about %s", ae, ae.Details, tt.field)
			}
		})
	}
}

func TestConfigHashIgnoresSpelling(t *testing.T) {
	a := hiveapi.WorkerConfig{Model: "tiny"}
	b := hiveapi.WorkerConfig{Model: "tiny", Slots: hiveapi.DefaultSlots, CtxSize: 2048, Backend: "cpu", IdleTimeout: "0s", LoadTimeout: "300s"}
	c := hiveapi.WorkerConfig{Model: "tiny", CtxSize: 4096}
	if hiveapi.ConfigHash(a) != hiveapi.ConfigHash(b) {
		t.Errorf("equivalent configs hash differently: %s vs %s", hiveapi.ConfigHash(a), hiveapi.ConfigHash(b))
	}
	if hiveapi.ConfigHash(a) == hiveapi.ConfigHash(c) {
		t.Errorf("different ctx_size hashes the same")
	}
}

func TestLogRing(t *testing.T) {
	r := newLogRing(3, "")
	r.Write([]byte("one\ntwo\nthr"))
	r.Write([]byte("ee\nfour\npart"))
	got := strings.Join(r.Tail(10), ",")
	if got != "three,four,part" && got != "two,three,four,part" {
		t.Errorf("Tail = %q", got)
	}
	if got := strings.Join(r.Tail(2), ","); got != "four,part" {
		t.Errorf("Tail(2) = %q", got)
	}
}

func TestPortPoolSkipsBusyAndTaken(t *testing.T) {
	busy := map[int]bool{8002: true}
	p := newPortPool("127.0.0.1", 8001, discardLogger())
	p.canBind = func(_ string, port int) bool { return !busy[port] }
	a, _ := p.allocate("a")
	b, _ := p.allocate("b")
	if a != 8001 || b != 8003 {
		t.Fatalf("got ports %d, %d; want 8001, 8003", a, b)
	}
	p.release(a)
	c, _ := p.allocate("c")
	if c != 8001 {
		t.Errorf("released port not reused: got %d", c)
	}
}

package gguf

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// modelFile is a shared test model, or for "synth:PRESET" the preset
// generated into a temporary folder.
func modelFile(t *testing.T, name string) string {
	t.Helper()
	preset, ok := strings.CutPrefix(name, "synth:")
	if !ok {
		return sharedModel(t, name)
	}
	res, err := SynthFile(context.Background(), filepath.Join(t.TempDir(), preset+".gguf"), preset, DefaultSeed)
	if err != nil {
		t.Fatal(err)
	}
	return res.Path
}

func sharedModel(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("RBEE_TEST_MODELS")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "models")
	}
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s not available (set RBEE_TEST_MODELS to the folder of the shared test models): %v", name, err)
	}
	return path
}

// TestEstimateAgainstLlamaCpp compares the estimate with what llama.cpp
// (the copy rbee links) reported when `rbee worker` loaded each model with
// these settings: "llama_kv_cache: CPU KV buffer size" and "llama_context:
// CPU compute buffer size", in MiB as it prints them. The KV cache must
// match to llama.cpp's rounding; the compute buffer may be over by at most
// 20% (a model with sliding-window layers is the most over) and under by at most 3%.
func TestEstimateAgainstLlamaCpp(t *testing.T) {
	tests := []struct {
		file        string
		w           Workload
		kv, compute float64
	}{
		{"qwen2-Q4_K_M.gguf", Workload{Slots: 1, CtxSize: 2048}, 2, 24.98},
		{"qwen2-Q4_K_M.gguf", Workload{Slots: 4, CtxSize: 2048}, 8, 25.57},
		{"qwen2-Q4_K_M.gguf", Workload{Slots: 4, CtxSize: 4096}, 16, 25.57},
		{"qwen2-Q4_K_M.gguf", Workload{Slots: 1, CtxSize: 512}, 0.5, 24.98},
		{"qwen2-Q4_K_M.gguf", Workload{Slots: 4, CtxSize: 2048, FlashAttn: true}, 8, 26.34},
		{"qwen2-Q4_K_M.gguf", Workload{Slots: 4, CtxSize: 2048, FlashAttn: true, KVCacheType: "q8_0"}, 4.25, 26.34},
		{"qwen2-Q4_K_M.gguf", Workload{Slots: 4, CtxSize: 2048, FlashAttn: true, KVCacheType: "q4_0"}, 2.25, 26.34},
		{"qwen2-Q4_K_M.gguf", Workload{Slots: 16, CtxSize: 1024}, 16, 27.89},
		{"llama3-Q4_K_M.gguf", Workload{Slots: 1, CtxSize: 2048}, 1, 16.13},
		{"llama3-Q4_K_M.gguf", Workload{Slots: 4, CtxSize: 4096}, 8, 16.5},
		{"llama3-Q4_K_M.gguf", Workload{Slots: 4, CtxSize: 2048, FlashAttn: true, KVCacheType: "q4_0"}, 1.12, 16.37},
		{"llama3-Q4_K_M.gguf", Workload{Slots: 16, CtxSize: 1024}, 8, 18},
		{"phi3-Q4_K_M.gguf", Workload{Slots: 1, CtxSize: 512}, 1, 15.9},
		{"phi3-Q4_K_M.gguf", Workload{Slots: 4, CtxSize: 4096}, 32, 16.27},
		{"phi3-Q4_K_M.gguf", Workload{Slots: 4, CtxSize: 2048, FlashAttn: true, KVCacheType: "q8_0"}, 8.5, 16.27},
		{"phi3-Q4_K_M.gguf", Workload{Slots: 16, CtxSize: 1024}, 32, 17.75},
		{"stories260K.gguf", Workload{Slots: 1, CtxSize: 2048}, 1.25, 9.23},
		{"stories260K.gguf", Workload{Slots: 4, CtxSize: 4096}, 10, 18.73},
		{"stories260K.gguf", Workload{Slots: 1, CtxSize: 512}, 0.31, 2.43},
		{"stories260K.gguf", Workload{Slots: 4, CtxSize: 2048, FlashAttn: true}, 5, 1.68},
		{"stories260K.gguf", Workload{Slots: 4, CtxSize: 2048, FlashAttn: true, KVCacheType: "q8_0"}, 2.66, 1.68},
		{"stories260K.gguf", Workload{Slots: 16, CtxSize: 1024}, 10, 5.24},
		{"llama-2-tiny-random.gguf", Workload{Slots: 1, CtxSize: 2048}, 0.06, 15.75},
		{"llama-2-tiny-random.gguf", Workload{Slots: 16, CtxSize: 1024}, 0.5, 17.59},
		// Heads of 64 where embedding ÷ heads is 32; gemma3 with sliding-window
		// layers, which llama.cpp gives full-size caches by default (swa_full).
		{"synth:qwen3-tiny", Workload{Slots: 1, CtxSize: 2048}, 2, 5.55},
		{"synth:qwen3-tiny", Workload{Slots: 4, CtxSize: 2048}, 8, 5.67},
		{"synth:qwen3-tiny", Workload{Slots: 4, CtxSize: 4096, FlashAttn: true, KVCacheType: "q8_0"}, 8.5, 3.48},
		{"synth:qwen3-tiny", Workload{Slots: 2, CtxSize: 512}, 1, 1.78},
		{"synth:qwen3-tiny", Workload{Slots: 8, CtxSize: 1024}, 8, 3.19},
		{"synth:gemma3-tiny", Workload{Slots: 1, CtxSize: 2048}, 3, 6.55},
		{"synth:gemma3-tiny", Workload{Slots: 4, CtxSize: 2048}, 12, 6.71},
		{"synth:gemma3-tiny", Workload{Slots: 4, CtxSize: 4096, FlashAttn: true, KVCacheType: "q8_0"}, 12.74, 5.55},
		{"synth:gemma3-tiny", Workload{Slots: 2, CtxSize: 512}, 1.5, 2.03},
		{"synth:gemma3-tiny", Workload{Slots: 8, CtxSize: 1024}, 12, 3.72},
	}
	for _, tt := range tests {
		f, err := ReadFile(modelFile(t, tt.file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.Metadata().Estimate(tt.w)
		if err != nil {
			t.Fatal(err)
		}
		kv, compute := float64(got.KVCache)/(1<<20), float64(got.Compute)/(1<<20)
		if kv < tt.kv-0.01 || kv > tt.kv+0.01 {
			t.Errorf("%s %+v: KV cache %.3f MiB, llama.cpp allocates %.2f MiB", tt.file, tt.w, kv, tt.kv)
		}
		if compute < tt.compute*0.97 || compute > tt.compute*1.2 {
			t.Errorf("%s %+v: compute buffer %.2f MiB, llama.cpp allocates %.2f MiB (%+.1f%%)", tt.file, tt.w, compute, tt.compute, 100*(compute/tt.compute-1))
		}
	}
}

func TestMetadataShape(t *testing.T) {
	tests := []struct {
		preset                               string
		keyLen, kvHeads, window, swa, layers int
	}{
		{"tiny", 32, 2, 0, 0, 2},
		{"qwen3-tiny", 64, 2, 0, 0, 2},
		{"gemma3-tiny", 64, 1, 256, 5, 6},
	}
	for _, tt := range tests {
		f, err := ReadFile(modelFile(t, "synth:"+tt.preset))
		if err != nil {
			t.Fatal(err)
		}
		m := f.Metadata()
		if m.KeyLength != tt.keyLen || m.ValueLength != tt.keyLen || m.KVHeads != tt.kvHeads || m.SlidingWindow != tt.window || m.SWALayers != tt.swa || m.Layers != tt.layers {
			t.Errorf("%s: metadata %+v, want key/value length %d, kv heads %d, window %d over %d of %d layers", tt.preset, m, tt.keyLen, tt.kvHeads, tt.window, tt.swa, tt.layers)
		}
		if m.Vocab != 512 || m.TensorBytes <= 0 || m.DecodeBytes <= 0 || m.DecodeBytes > m.TensorBytes || m.TensorBytes >= f.Size {
			t.Errorf("%s: vocab %d, tensor bytes %d, decode bytes %d, file %d", tt.preset, m.Vocab, m.TensorBytes, m.DecodeBytes, f.Size)
		}
	}
}

func TestEstimateWorkloads(t *testing.T) {
	f, err := ReadFile(modelFile(t, "synth:gemma3-tiny"))
	if err != nil {
		t.Fatal(err)
	}
	m := f.Metadata()
	row := int64(1 * (64 + 64) * 2) // one KV head, K and V of 64, f16
	tests := []struct {
		name    string
		w       Workload
		kv      int64
		wantErr string
	}{
		{"full-size caches", Workload{Slots: 4, CtxSize: 2048}, 4 * 6 * 2048 * row, ""},
		{"window-only caches: window + batch padded to 256", Workload{Slots: 4, CtxSize: 2048, WindowOnlySWA: true}, 4 * (2048 + 5*512) * row, ""},
		{"window larger than the context", Workload{Slots: 1, CtxSize: 256, WindowOnlySWA: true}, 6 * 256 * row, ""},
		{"context padded to 256 cells", Workload{Slots: 1, CtxSize: 300}, 6 * 512 * row, ""},
		{"q4_0 is 18 bytes a block of 32", Workload{Slots: 1, CtxSize: 1024, KVCacheType: "Q4_0"}, 6 * 1024 * 128 * 18 / 32, ""},
		{"unknown KV cache type", Workload{KVCacheType: "f8"}, 0, `kv_cache_type "f8" is not a KV cache type; use f16, q8_0, q4_0`},
	}
	for _, tt := range tests {
		got, err := m.Estimate(tt.w)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("%s: error %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got.KVCache != tt.kv {
			t.Errorf("%s: KV cache %d, want %d", tt.name, got.KVCache, tt.kv)
		}
		if got.Total != got.Weights+got.KVCache+got.Compute+got.Output || got.Weights != m.TensorBytes {
			t.Errorf("%s: %+v does not add up", tt.name, got)
		}
	}
}

// The CPU backend repacks 2-D Q4_0, Q4_K, IQ4_NL and Q2_K matrices whose
// rows come in multiples of 8, and nothing else.
func TestRepackable(t *testing.T) {
	const q2K, q4K, q6K, iq4NL = TensorQ2_K, TensorQ4_K, 14, TensorIQ4_NL
	cases := []struct {
		typ  TensorType
		dims []uint64
		want bool
	}{
		{TensorQ4_0, []uint64{2048, 5632}, true},
		{q4K, []uint64{2048, 256}, true},
		{iq4NL, []uint64{2048, 256}, true},
		{q2K, []uint64{2048, 256}, true},
		{TensorQ4_0, []uint64{2048, 1, 1}, false}, // one row
		{TensorQ4_0, []uint64{2048, 12}, false},   // rows not a multiple of 8
		{TensorQ4_0, []uint64{2048, 256, 8}, false},
		{TensorQ4_0, []uint64{2048, 256, 1}, true},
		{TensorQ4_0, []uint64{2048}, false},
		{q6K, []uint64{2048, 256}, false},
		{TensorQ8_0, []uint64{2048, 256}, false},
		{TensorF32, []uint64{2048, 256}, false},
	}
	for _, c := range cases {
		if got := repackable(TensorInfo{Name: "blk.0.ffn_up.weight", Type: c.typ, Dims: c.dims}); got != c.want {
			t.Errorf("%s %v: repackable = %v, want %v", c.typ, c.dims, got, c.want)
		}
	}
}

// RepackBytes matches "load_tensors: CPU_REPACK model buffer size" that
// llama.cpp (the copy rbee links, built with GGML_CPU_REPACK) printed when
// `rbee worker` loaded each shared model on an AVX-512 CPU, in MiB as it
// prints them. (The TinyLlama-shaped Q4_0 benchmark model: 554.91 MiB.)
func TestRepackBytesAgainstLlamaCpp(t *testing.T) {
	cases := []struct {
		file string
		mib  float64
	}{
		{"llama3-Q4_K_M.gguf", 0.69},
		{"phi3-Q4_K_M.gguf", 0.42},
		{"qwen2-Q4_K_M.gguf", 0.54},
		{"llama-2-tiny-random.gguf", 0}, // F32 and F16: nothing to repack
		{"stories260K.gguf", 0},
	}
	for _, c := range cases {
		f, err := ReadFile(sharedModel(t, c.file))
		if err != nil {
			t.Fatal(err)
		}
		got := float64(f.Metadata().RepackBytes) / (1 << 20)
		if got < c.mib-0.005 || got > c.mib+0.005 {
			t.Errorf("%s: RepackBytes = %.3f MiB, llama.cpp repacked %.2f MiB", c.file, got, c.mib)
		}
	}
}

package gguf

import (
	"fmt"
	"strings"
)

// KV cache element types a worker accepts (llama.cpp's type_k / type_v).
var KVCacheTypes = []string{"f16", "q8_0", "q4_0"}

// kvCacheTensorTypes maps a KV cache type to its ggml type.
var kvCacheTensorTypes = map[string]TensorType{"f16": TensorF16, "q8_0": TensorQ8_0, "q4_0": TensorQ4_0}

// Workload is how a worker runs a model: what its memory depends on besides
// the model itself. Zero fields take the worker's defaults.
type Workload struct {
	CtxSize      int    // tokens of context per slot
	Slots        int    // parallel sequences (each gets its own KV cache stream)
	KVCacheType  string // "f16" (default), "q8_0", "q4_0"
	FlashAttn    bool   // flash attention: no KQ matrix in the compute buffer
	Embeddings   bool   // one more sequence, and a batch as large as a slot's context
	PrefillChunk int    // prompt tokens per decode step; 0: 128, as the engine does
	// WindowOnlySWA keeps only the window (plus one batch) in the caches of
	// sliding-window layers. llama.cpp's default, which rbee's engine keeps,
	// is a full-size cache for every layer (swa_full), so it is off.
	WindowOnlySWA bool
}

// Memory is what a worker is expected to allocate, in bytes.
type Memory struct {
	Weights int64 `json:"weights_bytes"`  // tensor data (mapped from the file)
	KVCache int64 `json:"kv_cache_bytes"` // K and V for every slot's context
	Compute int64 `json:"compute_bytes"`  // the graph's scratch buffer for the largest batch
	Output  int64 `json:"output_bytes"`   // logits and embeddings of each sequence
	Total   int64 `json:"total_bytes"`
}

// DefaultPrefillChunk is the engine's default prompt tokens per step.
const DefaultPrefillChunk = 128

// Estimate returns the memory a llama.cpp worker allocates for the model
// under w, following llama.cpp's own layout: the context is padded to 256
// cells per sequence (sliding-window layers too, unless w.WindowOnlySWA), K rows use key_length and V rows value_length, and the compute
// buffer holds the larger of the logits and the attention scores of one
// batch, plus the attention mask (a model of llama.cpp's graph allocator
// checked against the allocations it reports). It fails on an unknown KV cache type.
func (m Metadata) Estimate(w Workload) (Memory, error) {
	w, err := w.normalized()
	if err != nil {
		return Memory{}, err
	}
	seqs, ub := int64(w.Slots), int64(w.PrefillChunk+w.Slots)
	if w.Embeddings {
		seqs++
		ub = max(ub, int64(w.CtxSize))
	}
	cells := padTo(int64(w.CtxSize), 256)
	mem := Memory{Weights: m.TensorBytes}
	mem.KVCache = seqs * m.kvStreamBytes(cells, ub, kvCacheTensorTypes[w.KVCacheType], w.WindowOnlySWA)

	const f32 = 4
	vocab, embd, heads, kvHeads := int64(m.Vocab), int64(m.Embedding), int64(m.Heads), int64(m.KVHeads)
	logits := vocab * ub * f32
	// One batch's attention: the KQ scores (none with flash attention), the
	// mask (one per kind of layer: a model mixing sliding-window and full
	// layers has two) and the Q, K and V projections.
	var scores int64
	if !w.FlashAttn {
		scores = cells * ub * heads * f32
	}
	masks := int64(1)
	if m.SWALayers > 0 && m.SWALayers < m.Layers {
		masks = 2
	}
	mask := cells * padTo(ub, 64) * f32
	qkv := (heads + 2*kvHeads) * int64(max(m.KeyLength, m.ValueLength)) * ub * f32
	// The masks live through the layers and are freed before the logits.
	// llama.cpp's allocator adds a little on top (views, the flash
	// attention path's casts): 5% covers what was measured.
	c := max(logits, scores+masks*mask+qkv) + 2*embd*ub*f32
	mem.Compute = c + c/20
	mem.Output = (vocab + embd) * seqs * f32
	mem.Total = mem.Weights + mem.KVCache + mem.Compute + mem.Output
	return mem, nil
}

// KVBytesPerToken is the K and V bytes one token adds to a full-attention
// cache of type kvType ("" = f16), over all layers.
func (m Metadata) KVBytesPerToken(kvType string) int64 {
	t, ok := kvCacheTensorTypes[strings.ToLower(kvType)]
	if !ok {
		t = TensorF16
	}
	return int64(m.Layers) * elemBytes(t, int64(m.KVHeads)*int64(m.KeyLength+m.ValueLength))
}

// kvStreamBytes is the cache of one sequence: full layers hold cells
// tokens; with windowOnly, sliding-window layers hold the window plus one
// batch (llama.cpp's iswa cache, padded to 256, never more than the full size).
func (m Metadata) kvStreamBytes(cells, ub int64, t TensorType, windowOnly bool) int64 {
	row := elemBytes(t, int64(m.KVHeads)*int64(m.KeyLength+m.ValueLength))
	full := int64(m.Layers - m.SWALayers)
	swaCells := cells
	if m.SWALayers > 0 && windowOnly {
		swaCells = padTo(min(cells, int64(m.SlidingWindow)+ub), 256)
	}
	return full*cells*row + int64(m.SWALayers)*swaCells*row
}

func (w Workload) normalized() (Workload, error) {
	if w.Slots <= 0 {
		w.Slots = 1
	}
	if w.CtxSize <= 0 {
		w.CtxSize = 2048
	}
	if w.PrefillChunk <= 0 {
		w.PrefillChunk = DefaultPrefillChunk
	}
	w.KVCacheType = strings.ToLower(w.KVCacheType)
	if w.KVCacheType == "" {
		w.KVCacheType = KVCacheTypes[0]
	}
	if _, ok := kvCacheTensorTypes[w.KVCacheType]; !ok {
		return w, fmt.Errorf("kv_cache_type %q is not a KV cache type; use %s", w.KVCacheType, strings.Join(KVCacheTypes, ", "))
	}
	return w, nil
}

// elemBytes is the bytes n elements of t take, blocks counted fractionally.
func elemBytes(t TensorType, n int64) int64 {
	be, bb := t.BlockSize()
	return n * bb / be
}

func padTo(n, to int64) int64 { return (n + to - 1) / to * to }

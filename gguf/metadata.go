package gguf

// Metadata is what the memory estimate and the plan need to know about a
// model: its size in parameters and bytes and the shape of its attention.
// It is read from a header alone (no tensor data), so a file's first bytes
// fetched over HTTP are enough. Counts that the header does not give are 0.
type Metadata struct {
	Architecture string `json:"architecture"`
	Parameters   int64  `json:"parameters"`
	Quantization string `json:"quantization"`
	TensorBytes  int64  `json:"tensor_bytes"` // the weights: every tensor's data
	DecodeBytes  int64  `json:"decode_bytes"` // weights read for each generated token (all but the token embedding lookup)
	// RepackBytes are the weights ggml's CPU backend copies at load into the
	// interleaved layout of its AVX2 and AVX-512 kernels (see repackable): a
	// CPU worker holds its own copy of these, while the rest stays mapped
	// from the file, shared by every worker of the model on the node.
	RepackBytes   int64 `json:"repack_bytes,omitempty"`
	Layers        int   `json:"layers"`         // {arch}.block_count
	Embedding     int   `json:"embedding"`      // {arch}.embedding_length
	FeedForward   int   `json:"feed_forward"`   // {arch}.feed_forward_length (the first layer's when it varies)
	Heads         int   `json:"heads"`          // {arch}.attention.head_count
	KVHeads       int   `json:"kv_heads"`       // {arch}.attention.head_count_kv (Heads when absent)
	KeyLength     int   `json:"key_length"`     // {arch}.attention.key_length (Embedding ÷ Heads when absent)
	ValueLength   int   `json:"value_length"`   // {arch}.attention.value_length (KeyLength when absent)
	Vocab         int   `json:"vocab"`          // tokens of the vocabulary
	ContextLength int   `json:"context_length"` // the trained context, {arch}.context_length
	SlidingWindow int   `json:"sliding_window,omitempty"`
	SWALayers     int   `json:"swa_layers,omitempty"` // layers that attend only to the last SlidingWindow tokens
	Shards        int   `json:"shards,omitempty"`     // files of a split model (0 or 1: one file)
}

// swaRule is how llama.cpp lays out sliding-window layers for one
// architecture (llama-model.cpp sets it per architecture, not from the
// file): every pattern-th layer attends to the whole context, the others to
// the window. denseFirst puts the full layer first in each group.
type swaRule struct {
	pattern     int
	denseFirst  bool
	window      int  // used when the file gives no sliding_window
	needsWindow bool // only when the file has a non-zero sliding_window
}

var swaRules = map[string]swaRule{
	"gemma2":          {pattern: 2, window: 4096},
	"gemma3":          {pattern: 6, needsWindow: true},
	"gemma-embedding": {pattern: 6},
	"cohere2":         {pattern: 4},
	"olmo2":           {pattern: 4, needsWindow: true},
	"exaone4":         {pattern: 4, window: 4096},
	"gpt-oss":         {pattern: 2},
	"afmoe":           {pattern: 4, needsWindow: true},
	"smallthinker":    {pattern: 4, denseFirst: true, window: 4096, needsWindow: true},
	"llama4":          {pattern: 4, window: 8192},
	"gemma3n":         {pattern: 5},
}

// Metadata derives the model's Metadata from its header.
func (f *File) Metadata() Metadata {
	s := f.Summary()
	m := Metadata{Architecture: s.Architecture, Parameters: s.Parameters, Quantization: s.Quantization, ContextLength: s.ContextLength}
	for _, t := range f.Tensors {
		if n := t.Bytes(); n > 0 {
			m.TensorBytes += n
			if t.Name != "token_embd.weight" || !f.hasTensor("output.weight") {
				m.DecodeBytes += n
				if repackable(t) {
					m.RepackBytes += n
				}
			}
		}
	}
	if n, ok := f.Uint("split.count"); ok && n > 1 && n <= maxShards {
		m.Shards = int(n)
	}
	arch := m.Architecture
	get := func(key string) int {
		v, ok := f.Uint(arch + "." + key)
		if !ok {
			v = f.firstOfArray(arch + "." + key)
		}
		if v > 1<<24 {
			return 0
		}
		return int(v)
	}
	m.Layers, m.Embedding, m.FeedForward = get("block_count"), get("embedding_length"), get("feed_forward_length")
	m.Heads, m.KVHeads = get("attention.head_count"), get("attention.head_count_kv")
	if m.KVHeads == 0 || m.KVHeads > m.Heads {
		m.KVHeads = m.Heads
	}
	m.KeyLength, m.ValueLength = get("attention.key_length"), get("attention.value_length")
	if m.KeyLength == 0 && m.Heads > 0 {
		m.KeyLength = m.Embedding / m.Heads
	}
	if m.ValueLength == 0 {
		m.ValueLength = m.KeyLength
	}
	m.Vocab = f.vocabSize(arch)
	m.SlidingWindow, m.SWALayers = f.slidingWindow(arch, m.Layers)
	return m
}

// repackable reports whether the CPU backend repacks t for its matrix
// kernels on x86 (ggml_repack_get_optimal_repack_type in the pinned ggml):
// a 2-D Q4_0, Q4_K, IQ4_NL or Q2_K matrix whose rows come in multiples of
// 8. Q2_K needs AVX-512 and the rest AVX2; on a CPU without them this
// overstates a worker's private memory, which errs on the safe side.
func repackable(t TensorInfo) bool {
	switch t.Type {
	case TensorQ4_0, TensorQ2_K, TensorQ4_K, TensorIQ4_NL:
	default:
		return false
	}
	if len(t.Dims) < 2 || t.Dims[1]%8 != 0 {
		return false
	}
	for _, d := range t.Dims[2:] {
		if d != 1 {
			return false
		}
	}
	return true
}

func (f *File) hasTensor(name string) bool {
	_, ok := f.Tensor(name)
	return ok
}

// firstOfArray reads the first element of a per-layer array value (some
// models give head counts per layer).
func (f *File) firstOfArray(key string) uint64 {
	kv, ok := f.Lookup(key)
	if !ok {
		return 0
	}
	switch v := kv.Value.(type) {
	case []uint32:
		if len(v) > 0 {
			return uint64(v[0])
		}
	case []int32:
		if len(v) > 0 && v[0] >= 0 {
			return uint64(v[0])
		}
	}
	return 0
}

// vocabSize is the token count: the tokenizer's list, else {arch}.vocab_size,
// else the output matrix's second dimension.
func (f *File) vocabSize(arch string) int {
	if kv, ok := f.Lookup("tokenizer.ggml.tokens"); ok {
		if toks, ok := kv.Value.([]string); ok {
			return len(toks)
		}
	}
	if n, ok := f.Uint(arch + ".vocab_size"); ok && n <= 1<<24 {
		return int(n)
	}
	for _, name := range []string{"output.weight", "token_embd.weight"} {
		if t, ok := f.Tensor(name); ok && len(t.Dims) == 2 && t.Dims[1] <= 1<<24 {
			return int(t.Dims[1])
		}
	}
	return 0
}

// slidingWindow returns the window and how many of the layers use it, as
// llama.cpp would: the architecture's rule, the file's sliding_window, and
// {arch}.attention.sliding_window_pattern when the file gives one.
func (f *File) slidingWindow(arch string, layers int) (window, swaLayers int) {
	rule, known := swaRules[arch]
	w, has := f.Uint(arch + ".attention.sliding_window")
	if has && w > 0 && w <= 1<<24 {
		window = int(w)
	} else if known && !rule.needsWindow {
		window = rule.window
	}
	if window == 0 || layers == 0 {
		return 0, 0
	}
	if kv, ok := f.Lookup(arch + ".attention.sliding_window_pattern"); ok {
		if flags, ok := kv.Value.([]bool); ok {
			for _, swa := range flags[:min(len(flags), layers)] {
				if swa {
					swaLayers++
				}
			}
			return window, swaLayers
		}
		if p, ok := f.Uint(arch + ".attention.sliding_window_pattern"); ok && p <= 1<<16 {
			rule, known = swaRule{pattern: int(p)}, true
		}
	}
	if !known {
		return 0, 0 // a window llama.cpp does not apply to this architecture
	}
	for il := 0; il < layers; il++ {
		if rule.isSWA(il) {
			swaLayers++
		}
	}
	return window, swaLayers
}

// isSWA is llama_hparams::set_swa_pattern's rule for layer il.
func (r swaRule) isSWA(il int) bool {
	if r.pattern == 0 {
		return true
	}
	if r.denseFirst {
		return il%r.pattern != 0
	}
	return il%r.pattern < r.pattern-1
}

// maxShards bounds split.count: llama.cpp's gguf-split numbers files with 5 digits.
const maxShards = 99999

package engine

import (
	"fmt"

	"github.com/ollama/ollama/llama"
	"github.com/ollama/ollama/ml"

	"github.com/rbee-dev/rbee/engine/cpu"
	"github.com/rbee-dev/rbee/spec"
)

// Options configure Load. Zero values pick the defaults noted on each field.
type Options struct {
	Slots        int           // sequences decoded together; default 1
	CtxSize      int           // context length of each slot, in tokens; default 2048
	Threads      int           // CPU threads; 0 = number of physical cores
	PrefillChunk int           // prompt tokens fed per step over all new sequences; default 128
	Progress     func(float32) // called while the file loads, 0..1

	// FlashAttention turns llama.cpp's flash attention on; off when false.
	FlashAttention bool
	// KVCacheType is the element type of the KV cache: "f16" (default),
	// "q8_0" or "q4_0". A quantized cache needs FlashAttention.
	KVCacheType string
	// ChatTemplate names a built-in chat template (see ChatTemplates), such
	// as "chatml" or "llama3"; empty uses the model's own.
	ChatTemplate string
	// Embeddings prepares the context for Embed, pooling as the GGUF file
	// says (mean over the tokens when it says nothing).
	Embeddings bool

	// Backend is what the model's layers compute on: BackendCPU (default)
	// or BackendCUDA, which needs ggml's CUDA library in the library folder
	// and a CUDA device; without them Load fails rather than run on the CPU.
	Backend string
	// Device is the CUDA device (0, 1, … among the CUDA devices ggml sees)
	// of BackendCUDA.
	Device int
	// GPULayers is how many layers BackendCUDA offloads (llama.cpp takes
	// the last ones); 0 offloads all of them.
	GPULayers int
}

// Backends Options.Backend accepts.
const (
	BackendCPU  = spec.BackendCPU
	BackendCUDA = spec.BackendCUDA
)

// KVCacheTypes are the values Options.KVCacheType accepts.
var KVCacheTypes = spec.KVCacheTypes

// withDefaults fills in the defaults and checks the options that do not
// depend on the model. An error here is deterministic: loading again with
// the same options fails the same way.
func (o Options) withDefaults() (Options, error) {
	if o.Slots <= 0 {
		o.Slots = 1
	}
	if o.CtxSize <= 0 {
		o.CtxSize = spec.DefaultCtxSize
	}
	o.Threads = cpu.Threads(o.Threads)
	if o.PrefillChunk <= 0 {
		o.PrefillChunk = 128
	}
	switch o.KVCacheType {
	case "":
		o.KVCacheType = "f16"
	case "f16":
	case "q8_0", "q4_0":
		if !o.FlashAttention {
			return o, fmt.Errorf("kv cache type %q needs flash attention: llama.cpp quantizes the V cache only with it; turn flash attention on or use f16", o.KVCacheType)
		}
	default:
		return o, fmt.Errorf("kv cache type %q is not supported; use f16, q8_0 or q4_0", o.KVCacheType)
	}
	switch o.Backend {
	case "":
		o.Backend = BackendCPU
	case BackendCPU, BackendCUDA:
	default:
		return o, fmt.Errorf("backend %q is not supported; use cpu or cuda", o.Backend)
	}
	if o.Device < 0 || o.GPULayers < 0 {
		return o, fmt.Errorf("device %d and gpu layers %d must not be negative (gpu layers 0 = all)", o.Device, o.GPULayers)
	}
	if err := checkTemplateName(o.ChatTemplate); err != nil {
		return o, err
	}
	return o, nil
}

// seqs is the number of sequences of the context: one per slot, and one
// more that Embed uses when embeddings are on.
func (o Options) seqs() int {
	if o.Embeddings {
		return o.Slots + 1
	}
	return o.Slots
}

// ubatch is the most tokens one decode takes. Embeddings of a pooling
// model need a whole input in one batch, so it is the slot's context then.
func (o Options) ubatch() int {
	n := o.PrefillChunk + o.Slots
	if o.Embeddings {
		n = max(n, o.CtxSize)
	}
	return n
}

// contextParams are the llama.cpp context parameters for the options.
func (o Options) contextParams() llama.ContextParams {
	fa := ml.FlashAttentionDisabled
	if o.FlashAttention {
		fa = ml.FlashAttentionEnabled
	}
	return llama.NewContextParams(o.CtxSize*o.seqs(), o.ubatch(), o.seqs(), o.Threads, fa, o.KVCacheType)
}

package gguf

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// Hyperparameters are the shape of a synth llama model.
type Hyperparameters struct {
	Vocab         int
	Embedding     int // n_embd
	Layers        int // n_layer (block_count)
	Heads         int // attention heads
	KVHeads       int // key/value heads (grouped-query attention when < Heads)
	FeedForward   int // n_ff
	ContextLength int
	Weights       TensorType // type of the 2-D weight matrices; norms are always F32
	// Shaped biases the embedding and output matrices so that even random
	// weights produce word-like text that ends on EOS (see shapeVocab). F32 only.
	Shaped       bool
	RopeFreqBase float32
	NormEpsilon  float32
	// Architecture is "llama" (default), "qwen3" (per-head q/k norms) or
	// "gemma3" (also post-attention and post-feed-forward norms, sliding
	// window layers).
	Architecture string
	// KeyLength and ValueLength are the head sizes; 0 means Embedding ÷
	// Heads. A qwen3 or gemma3 head is often larger than that.
	KeyLength, ValueLength int
	SlidingWindow          int // gemma3: tokens a sliding-window layer sees
}

func (h Hyperparameters) arch() string {
	if h.Architecture == "" {
		return "llama"
	}
	return h.Architecture
}

// heads returns the key and value head sizes.
func (h Hyperparameters) heads() (k, v int) {
	k, v = h.KeyLength, h.ValueLength
	if k == 0 {
		k = h.Embedding / h.Heads
	}
	if v == 0 {
		v = k
	}
	return k, v
}

// Preset is a named synth model.
type Preset struct {
	Name        string
	Description string
	Hyper       Hyperparameters
}

var presets = []Preset{
	{
		Name:        "tiny",
		Description: "2-layer llama, 512-token vocabulary, F32, 1.7 MB, word-like output: tests and demos",
		Hyper: Hyperparameters{
			Vocab: 512, Embedding: 128, Layers: 2, Heads: 4, KVHeads: 2, FeedForward: 256,
			ContextLength: 2048, Weights: TensorF32, RopeFreqBase: 10000, NormEpsilon: 1e-5,
			Shaped: true,
		},
	},
	{
		Name:        "tinyllama-q4_0",
		Description: "TinyLlama-shaped 1.1B llama in Q4_0, about 620 MB: the benchmark model",
		Hyper: Hyperparameters{
			Vocab: 32000, Embedding: 2048, Layers: 22, Heads: 32, KVHeads: 4, FeedForward: 5632,
			ContextLength: 2048, Weights: TensorQ4_0, RopeFreqBase: 10000, NormEpsilon: 1e-5,
		},
	},
	{
		Name:        "qwen3-tiny",
		Description: "2-layer qwen3 whose heads (64) are twice embedding ÷ heads, F32: memory estimate tests",
		Hyper: Hyperparameters{
			Architecture: "qwen3", Vocab: 512, Embedding: 128, Layers: 2, Heads: 4, KVHeads: 2, KeyLength: 64, ValueLength: 64,
			FeedForward: 256, ContextLength: 4096, Weights: TensorF32, RopeFreqBase: 1000000, NormEpsilon: 1e-6,
		},
	},
	{
		Name:        "gemma3-tiny",
		Description: "6-layer gemma3, five of them with a 256-token sliding window, F32: memory estimate tests",
		Hyper: Hyperparameters{
			Architecture: "gemma3", Vocab: 512, Embedding: 128, Layers: 6, Heads: 4, KVHeads: 1, KeyLength: 64, ValueLength: 64,
			FeedForward: 256, ContextLength: 8192, Weights: TensorF32, RopeFreqBase: 1000000, NormEpsilon: 1e-6, SlidingWindow: 256,
		},
	},
}

// DefaultSeed is the seed rbee uses when none is given, so that `synth:NAME`
// model references give the same file on every machine.
const DefaultSeed int64 = 1

// Presets returns the synth presets, in a stable order.
func Presets() []Preset {
	return append([]Preset(nil), presets...)
}

// PresetNames returns the preset names, for messages and flag help.
func PresetNames() []string {
	names := make([]string, len(presets))
	for i, p := range presets {
		names[i] = p.Name
	}
	return names
}

// LookupPreset returns the preset with the given name.
func LookupPreset(name string) (Preset, error) {
	for _, p := range presets {
		if p.Name == name {
			return p, nil
		}
	}
	return Preset{}, fmt.Errorf("unknown synth preset %q; available presets: %s", name, strings.Join(PresetNames(), ", "))
}

// Synth writes the named preset as a GGUF file to w and returns the bytes
// written. The same preset and seed always give byte-identical output.
func Synth(ctx context.Context, w io.Writer, preset string, seed int64) (int64, error) {
	p, err := LookupPreset(preset)
	if err != nil {
		return 0, err
	}
	return p.Writer(seed).WriteTo(ctx, w)
}

// SynthResult describes a file written by SynthFile.
type SynthResult struct {
	Path   string
	Preset string
	Seed   int64
	Size   int64
	SHA256 string // hex
}

// SynthFile writes the named preset to path atomically: the data goes to a
// temporary file in the same folder, which is renamed into place only when
// complete, so readers never see a partial model.
func SynthFile(ctx context.Context, path, preset string, seed int64) (SynthResult, error) {
	p, err := LookupPreset(preset)
	if err != nil {
		return SynthResult{}, err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.partial")
	if err != nil {
		return SynthResult{}, fmt.Errorf("create the output file in %s (does the folder exist and is it writable?): %w", dir, err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err := p.Writer(seed).WriteTo(ctx, io.MultiWriter(tmp, h))
	if err != nil {
		return SynthResult{}, fmt.Errorf("write synth model %q: %w", preset, err)
	}
	if err := tmp.Sync(); err != nil {
		return SynthResult{}, fmt.Errorf("flush %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return SynthResult{}, err
	}
	if err := tmp.Close(); err != nil {
		return SynthResult{}, fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return SynthResult{}, fmt.Errorf("move the model into place at %s: %w", path, err)
	}
	done = true
	return SynthResult{Path: path, Preset: preset, Seed: seed, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// setMetadata writes the preset's metadata (architecture, shape, tokenizer,
// chat template) to w and returns the vocabulary's tokens and types.
func (p Preset) setMetadata(w *Writer, seed int64) ([]string, []int32) {
	h := p.Hyper
	fileType := FileTypeAllF32
	switch h.Weights {
	case TensorF16:
		fileType = FileTypeMostlyF16
	case TensorQ4_0:
		fileType = FileTypeMostlyQ40
	}
	a := h.arch() + "."
	keyLen, valLen := h.heads()
	w.Set("general.architecture", h.arch())
	w.Set("general.name", "rbee-synth-"+p.Name)
	w.Set("general.description", fmt.Sprintf("random weights generated by rbee model synth (preset %s, seed %d)", p.Name, seed))
	w.Set("general.alignment", uint32(DefaultAlignment))
	w.Set("general.file_type", uint32(fileType))
	w.Set(a+"vocab_size", uint32(h.Vocab))
	w.Set(a+"context_length", uint32(h.ContextLength))
	w.Set(a+"embedding_length", uint32(h.Embedding))
	w.Set(a+"block_count", uint32(h.Layers))
	w.Set(a+"feed_forward_length", uint32(h.FeedForward))
	w.Set(a+"attention.head_count", uint32(h.Heads))
	w.Set(a+"attention.head_count_kv", uint32(h.KVHeads))
	if h.KeyLength != 0 {
		w.Set(a+"attention.key_length", uint32(keyLen))
		w.Set(a+"attention.value_length", uint32(valLen))
	}
	if h.SlidingWindow != 0 {
		w.Set(a+"attention.sliding_window", uint32(h.SlidingWindow))
	}
	w.Set(a+"rope.dimension_count", uint32(keyLen))
	w.Set(a+"rope.freq_base", h.RopeFreqBase)
	w.Set(a+"attention.layer_norm_rms_epsilon", h.NormEpsilon)
	tokens, scores, types := spmVocab(h.Vocab)
	w.Set("tokenizer.ggml.model", "llama")
	w.Set("tokenizer.ggml.tokens", tokens)
	w.Set("tokenizer.ggml.scores", scores)
	w.Set("tokenizer.ggml.token_type", types)
	w.Set("tokenizer.ggml.bos_token_id", uint32(bosID))
	w.Set("tokenizer.ggml.eos_token_id", uint32(eosID))
	w.Set("tokenizer.ggml.unknown_token_id", uint32(unkID))
	w.Set("tokenizer.ggml.add_bos_token", true)
	w.Set("tokenizer.ggml.add_eos_token", false)
	w.Set("tokenizer.chat_template", chatMLTemplate)

	return tokens, types
}

// Writer returns a Writer holding the preset's metadata and tensors, with
// weights drawn from a generator seeded by seed and each tensor's name.
func (p Preset) Writer(seed int64) *Writer {
	h := p.Hyper
	w := NewWriter()
	tokens, types := p.setMetadata(w, seed)
	keyLen, valLen := h.heads()
	e, ff, v := uint64(h.Embedding), uint64(h.FeedForward), uint64(h.Vocab)
	q, kvK, kvV, o := uint64(h.Heads*keyLen), uint64(h.KVHeads*keyLen), uint64(h.KVHeads*valLen), uint64(h.Heads*valLen)
	matrix := func(name string, dims ...uint64) {
		w.AddTensor(name, h.Weights, dims, randomTensor(h.Weights, seed, name, dims))
	}
	norm := func(name string) {
		w.AddTensor(name, TensorF32, []uint64{e}, normWeights(h.Embedding, nil))
	}
	layerNorm := norm
	if h.Shaped {
		// Hide the shaping dimensions from the blocks (see shape.go).
		layerNorm = func(name string) {
			w.AddTensor(name, TensorF32, []uint64{e}, normWeights(h.Embedding, []int{carrierDim, sentenceEndDim}))
		}
	}
	if h.Shaped {
		bias, sentenceEnd := shapeVocab(tokens, types)
		w.AddTensor("token_embd.weight", TensorF32, []uint64{e, v}, shapedEmbedding(seed, h.Embedding, sentenceEnd))
		defer w.AddTensor("output.weight", TensorF32, []uint64{e, v}, shapedOutput(seed, h.Embedding, bias))
	} else {
		matrix("token_embd.weight", e, v)
		defer matrix("output.weight", e, v)
	}
	for i := 0; i < h.Layers; i++ {
		b := fmt.Sprintf("blk.%d.", i)
		layerNorm(b + "attn_norm.weight")
		matrix(b+"attn_q.weight", e, q)
		matrix(b+"attn_k.weight", e, kvK)
		matrix(b+"attn_v.weight", e, kvV)
		matrix(b+"attn_output.weight", o, e)
		if h.arch() != "llama" {
			w.AddTensor(b+"attn_q_norm.weight", TensorF32, []uint64{uint64(keyLen)}, normWeights(keyLen, nil))
			w.AddTensor(b+"attn_k_norm.weight", TensorF32, []uint64{uint64(keyLen)}, normWeights(keyLen, nil))
		}
		if h.arch() == "gemma3" {
			norm(b + "post_attention_norm.weight")
			norm(b + "post_ffw_norm.weight")
		}
		layerNorm(b + "ffn_norm.weight")
		matrix(b+"ffn_gate.weight", e, ff)
		matrix(b+"ffn_up.weight", e, ff)
		matrix(b+"ffn_down.weight", ff, e)
	}
	norm("output_norm.weight")
	return w
}

// weightStd is the standard deviation of synth weights: small enough that
// activations stay finite, large enough that logits are not all equal.
const weightStd = 0.02

// tensorRand returns a generator determined by the seed and the tensor name,
// so one tensor's values do not depend on the order tensors are written in.
func tensorRand(seed int64, name string) *rand.ChaCha8 {
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], uint64(seed))
	key := sha256.Sum256(append(buf[:], name...))
	return rand.NewChaCha8(key)
}

// randomTensor writes normal(0, weightStd) weights in the given type.
func randomTensor(typ TensorType, seed int64, name string, dims []uint64) TensorSource {
	return func(out io.Writer) error {
		src := tensorRand(seed, name)
		n := int(TensorInfo{Dims: dims}.Elements())
		switch typ {
		case TensorF32, TensorF16:
			rng := rand.New(src)
			size := 4
			if typ == TensorF16 {
				size = 2
			}
			buf := make([]byte, 0, 1<<16)
			for i := 0; i < n; i++ {
				x := float32(rng.NormFloat64() * weightStd)
				if typ == TensorF32 {
					buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(x))
				} else {
					buf = binary.LittleEndian.AppendUint16(buf, float16Bits(x))
				}
				if len(buf)+size > cap(buf) {
					if _, err := out.Write(buf); err != nil {
						return err
					}
					buf = buf[:0]
				}
			}
			_, err := out.Write(buf)
			return err
		case TensorQ4_0:
			return writeQ4_0(out, src, n)
		}
		return fmt.Errorf("synth cannot generate %s weights", typ)
	}
}

// q4Scales are the block scales Q4_0 synth weights draw from: around
// weightStd / std(q-8), between 0.75x and 1.25x of it, as float16 bits. Half
// are negative: uniform q in 0..15 gives q-8 a mean of -0.5, and a shared bias
// in every weight would make all tokens look alike and the logits degenerate.
var q4Scales = func() (t [256]uint16) {
	base := weightStd / math.Sqrt((16*16-1)/12.0+0.25) // std of q-8 for uniform q in 0..15
	for i := range t {
		d := base * (0.75 + 0.5*float64(i>>1)/127)
		if i&1 == 1 {
			d = -d
		}
		t[i] = float16Bits(float32(d))
	}
	return t
}()

// writeQ4_0 writes n random weights as Q4_0 blocks: a float16 scale d and 16
// bytes holding 32 4-bit values q, each meaning (q-8)*d. Random nibbles are
// uniform, so no quantizer is needed. The bytes come from wyrand seeded by the
// tensor's ChaCha8 stream: statistically fine for weights and several times
// faster than ChaCha8, which matters for 620 MB.
func writeQ4_0(out io.Writer, src *rand.ChaCha8, n int) error {
	const blockBytes = 18
	const chunk = 4096 // blocks per write
	state := src.Uint64()
	blocks := n / 32
	buf := make([]byte, chunk*blockBytes+8)
	for blocks > 0 {
		k := min(blocks, chunk)
		b := buf[:k*blockBytes]
		for i := 0; i < len(b); i += 8 {
			state += 0xa0761d6478bd642f
			hi, lo := bits.Mul64(state, state^0xe7037ed1a0b428db)
			binary.LittleEndian.PutUint64(buf[i:], hi^lo)
		}
		for i := 0; i < len(b); i += blockBytes {
			binary.LittleEndian.PutUint16(b[i:], q4Scales[b[i]])
		}
		if _, err := out.Write(b); err != nil {
			return err
		}
		blocks -= k
	}
	return nil
}

// normWeights writes n float32 RMS-norm weights: ones (the identity), with
// zeros at the masked dimensions.
func normWeights(n int, masked []int) TensorSource {
	return func(out io.Writer) error {
		v := make([]float32, n)
		for i := range v {
			v[i] = 1
		}
		for _, d := range masked {
			v[d] = 0
		}
		return writeF32(out, v)
	}
}

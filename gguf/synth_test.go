package gguf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// synthHeader generates a preset through a pipe and parses only its header,
// stopping the generator once the header is read.
func synthHeader(t *testing.T, preset string, seed int64) *File {
	t.Helper()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := Synth(context.Background(), pw, preset, seed)
		pw.CloseWithError(err)
		done <- err
	}()
	f, err := Read(pr)
	pr.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil && !errors.Is(err, io.ErrClosedPipe) {
		t.Fatal(err)
	}
	return f
}

func TestPresetHyperparameters(t *testing.T) {
	cases := []struct {
		preset                                  string
		vocab, embd, layers, heads, kv, ff, ctx uint64
		weights                                 TensorType
		quant                                   string
		minParams, maxParams                    int64
	}{
		{"tiny", 512, 128, 2, 4, 2, 256, 2048, TensorF32, "F32", 400_000, 500_000},
		{"tinyllama-q4_0", 32000, 2048, 22, 32, 4, 5632, 2048, TensorQ4_0, "Q4_0", 1_090_000_000, 1_110_000_000},
	}
	for _, c := range cases {
		t.Run(c.preset, func(t *testing.T) {
			f := synthHeader(t, c.preset, 1)
			want := map[string]uint64{
				"llama.vocab_size":                c.vocab,
				"llama.embedding_length":          c.embd,
				"llama.block_count":               c.layers,
				"llama.attention.head_count":      c.heads,
				"llama.attention.head_count_kv":   c.kv,
				"llama.feed_forward_length":       c.ff,
				"llama.context_length":            c.ctx,
				"llama.rope.dimension_count":      c.embd / c.heads,
				"general.alignment":               32,
				"tokenizer.ggml.bos_token_id":     1,
				"tokenizer.ggml.eos_token_id":     2,
				"tokenizer.ggml.unknown_token_id": 0,
			}
			for k, v := range want {
				if got, ok := f.Uint(k); !ok || got != v {
					t.Errorf("%s = %d (%v), want %d", k, got, ok, v)
				}
			}
			// llama.cpp insists on exact value types for these keys.
			for k, typ := range map[string]ValueType{
				"llama.block_count": TypeUint32, "general.alignment": TypeUint32, "general.file_type": TypeUint32,
				"llama.rope.freq_base": TypeFloat32, "llama.attention.layer_norm_rms_epsilon": TypeFloat32,
				"tokenizer.ggml.add_bos_token": TypeBool, "tokenizer.ggml.model": TypeString,
			} {
				if kv, _ := f.Lookup(k); kv.Type != typ {
					t.Errorf("%s has type %s, want %s", k, kv.Type, typ)
				}
			}
			tokens, _ := f.Lookup("tokenizer.ggml.tokens")
			scores, _ := f.Lookup("tokenizer.ggml.scores")
			types, _ := f.Lookup("tokenizer.ggml.token_type")
			toks := tokens.Value.([]string)
			if len(toks) != int(c.vocab) || len(scores.Value.([]float32)) != int(c.vocab) || len(types.Value.([]int32)) != int(c.vocab) {
				t.Fatalf("tokenizer arrays have %d tokens, want %d", len(toks), c.vocab)
			}
			seen := map[string]bool{}
			for _, tok := range toks {
				if seen[tok] {
					t.Errorf("token %q appears twice", tok)
				}
				seen[tok] = true
			}
			if toks[0] != "<unk>" || toks[1] != "<s>" || toks[2] != "</s>" || toks[3] != "<0x00>" || toks[258] != "<0xFF>" || types.Value.([]int32)[3] != tokenByte {
				t.Errorf("special and byte tokens misplaced: %q", toks[:5])
			}
			if want := 3 + 9*int(c.layers); len(f.Tensors) != want {
				t.Errorf("%d tensors, want %d", len(f.Tensors), want)
			}
			kvDim := c.embd / c.heads * c.kv
			shapes := map[string][]uint64{
				"token_embd.weight":                               {c.embd, c.vocab},
				"output.weight":                                   {c.embd, c.vocab},
				"output_norm.weight":                              {c.embd},
				"blk.0.attn_q.weight":                             {c.embd, c.embd},
				"blk.0.attn_k.weight":                             {c.embd, kvDim},
				"blk.0.attn_v.weight":                             {c.embd, kvDim},
				"blk.0.ffn_down.weight":                           {c.ff, c.embd},
				"blk.0.ffn_gate.weight":                           {c.embd, c.ff},
				fmt.Sprintf("blk.%d.ffn_norm.weight", c.layers-1): {c.embd},
			}
			for name, dims := range shapes {
				ti, ok := f.Tensor(name)
				if !ok || !reflect.DeepEqual(ti.Dims, dims) {
					t.Errorf("tensor %s: %v (found %v), want %v", name, ti.Dims, ok, dims)
				}
				if want := c.weights; len(dims) == 1 {
					if ti.Type != TensorF32 {
						t.Errorf("norm %s is %s, want F32", name, ti.Type)
					}
				} else if ti.Type != want {
					t.Errorf("%s is %s, want %s", name, ti.Type, want)
				}
			}
			s := f.Summary()
			if s.Architecture != "llama" || s.Quantization != c.quant || s.ContextLength != int(c.ctx) || !s.HasChatTemplate {
				t.Errorf("summary %+v", s)
			}
			// llama.cpp reports 1.00 MiB (tiny) and 44.00 MiB (tinyllama) of KV cache at 2048 tokens.
			if got, want := f.KVCacheBytes(2048), int64(2*c.layers*2048*kvDim*2); got != want {
				t.Errorf("KVCacheBytes(2048) = %d, want %d", got, want)
			}
			if s.Parameters < c.minParams || s.Parameters > c.maxParams {
				t.Errorf("%d parameters, want %d..%d", s.Parameters, c.minParams, c.maxParams)
			}
		})
	}
}

func TestSynthDeterministic(t *testing.T) {
	gen := func(preset string, seed int64) (sum [32]byte, n int64) {
		h := sha256.New()
		n, err := Synth(context.Background(), h, preset, seed)
		if err != nil {
			t.Fatal(err)
		}
		copy(sum[:], h.Sum(nil))
		return sum, n
	}
	presets := []string{"tiny"}
	if !testing.Short() {
		presets = append(presets, "tinyllama-q4_0")
	}
	for _, p := range presets {
		t.Run(p, func(t *testing.T) {
			a, n := gen(p, 42)
			b, _ := gen(p, 42)
			c, _ := gen(p, 43)
			if a != b {
				t.Error("same seed gave different files")
			}
			if a == c {
				t.Error("different seeds gave the same file")
			}
			// The header predicts the file size exactly.
			f := synthHeader(t, p, 42)
			last := f.Tensors[len(f.Tensors)-1]
			if want := int64(alignUp(uint64(f.DataOffset)+last.Offset+uint64(last.Bytes()), f.Alignment)); n != want {
				t.Errorf("wrote %d bytes, header describes %d", n, want)
			}
		})
	}
}

func TestSynthFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tiny.gguf")
	res, err := SynthFile(context.Background(), path, "tiny", 7)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(data); fmt.Sprintf("%x", sum) != res.SHA256 || int64(len(data)) != res.Size {
		t.Errorf("result %+v does not match the file (%d bytes)", res, len(data))
	}
	var buf bytes.Buffer
	if _, err := Synth(context.Background(), &buf, "tiny", 7); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), data) {
		t.Error("SynthFile and Synth differ for the same seed")
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Summary().Size != res.Size {
		t.Errorf("summary size %d, want %d", f.Summary().Size, res.Size)
	}

	// A cancelled run leaves nothing behind, not even the temporary file.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := SynthFile(ctx, filepath.Join(dir, "cancelled.gguf"), "tiny", 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err = %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries after a cancelled run, want only tiny.gguf", len(entries))
	}

	if _, err := SynthFile(context.Background(), filepath.Join(dir, "no", "such", "dir.gguf"), "tiny", 1); err == nil {
		t.Error("missing folder: no error")
	}
	_, err = SynthFile(context.Background(), path, "huge", 1)
	if err == nil || !strings.Contains(err.Error(), "tiny, tinyllama-q4_0") {
		t.Errorf("unknown preset: err = %v, want the list of presets", err)
	}
}

func TestSpmVocab(t *testing.T) {
	for _, n := range []int{300, 512, 32000} {
		toks, scores, types := spmVocab(n)
		if len(toks) != n || len(scores) != n || len(types) != n {
			t.Fatalf("spmVocab(%d) gave %d tokens", n, len(toks))
		}
		// Normal pieces have strictly descending scores, as SentencePiece expects.
		last := float32(1)
		for i, typ := range types {
			if typ != tokenNormal {
				continue
			}
			if scores[i] >= last {
				t.Fatalf("spmVocab(%d): score of %q (%g) not below %g", n, toks[i], scores[i], last)
			}
			last = scores[i]
		}
	}
}

func BenchmarkSynthQ4_0(b *testing.B) {
	for b.Loop() {
		n, err := Synth(context.Background(), io.Discard, "tinyllama-q4_0", 1)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(n)
	}
}

func TestShapedTiny(t *testing.T) {
	var buf bytes.Buffer
	if _, err := Synth(context.Background(), &buf, "tiny", 1); err != nil {
		t.Fatal(err)
	}
	f, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	floats := func(name string) []float32 {
		ti, ok := f.Tensor(name)
		if !ok || ti.Type != TensorF32 {
			t.Fatalf("tensor %s missing or not F32", name)
		}
		raw := buf.Bytes()[f.DataOffset+int64(ti.Offset):][:ti.Bytes()]
		v := make([]float32, len(raw)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return v
	}
	tokensKV, _ := f.Lookup("tokenizer.ggml.tokens")
	tokens := tokensKV.Value.([]string)
	embd := 128
	emb, out := floats("token_embd.weight"), floats("output.weight")
	id := map[string]int{}
	for i, tok := range tokens {
		id[tok] = i
		if emb[i*embd+carrierDim] != 1 {
			t.Fatalf("token %q: carrier dimension is %g, want 1", tok, emb[i*embd+carrierDim])
		}
	}
	if emb[id["."]*embd+sentenceEndDim] != 1 || emb[id["▁the"]*embd+sentenceEndDim] != 0 {
		t.Error("sentence-end flag wrong")
	}
	// The carrier weight orders tokens: words above pieces above bytes and control tokens.
	w := func(tok string) float32 { return out[id[tok]*embd+carrierDim] }
	if !(w("▁the") > w("▁th") && w("▁th") > w("<0x41>") && w("<0x41>") == w("<s>") && w("<s>") < 0) {
		t.Errorf("carrier weights: the %g, th %g, <0x41> %g, <s> %g", w("▁the"), w("▁th"), w("<0x41>"), w("<s>"))
	}
	if out[eosID*embd+sentenceEndDim] <= 0 {
		t.Error("EOS row does not read the sentence-end flag")
	}
	for _, name := range []string{"blk.0.attn_norm.weight", "blk.1.ffn_norm.weight"} {
		n := floats(name)
		if n[carrierDim] != 0 || n[sentenceEndDim] != 0 || n[2] != 1 {
			t.Errorf("%s: %v, want the shaping dimensions masked", name, n[:3])
		}
	}
	if n := floats("output_norm.weight"); n[carrierDim] != 1 {
		t.Error("output_norm must keep the carrier dimension")
	}
}

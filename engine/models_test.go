package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rbee-dev/rbee/gguf"
)

// sharedModel is a real GGUF file from the shared test models folder
// ($RBEE_TEST_MODELS, else shared/models beside the repository); the test is
// skipped when it is not there.
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

func loadPath(t *testing.T, path string, opts Options) *Engine {
	t.Helper()
	if opts.Threads == 0 {
		opts.Threads = 1 // see load
	}
	e, err := Load(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// stories260K emits BOS between stories; its text must not show it.
func TestControlTokensAreNotRendered(t *testing.T) {
	e := loadPath(t, sharedModel(t, "stories260K.gguf"), Options{CtxSize: 1024})
	bos := tokens(t, e, "", true)
	if len(bos) != 1 {
		t.Fatalf("BOS: %v", bos)
	}
	sp := DefaultSampling()
	sp.Seed = 1
	var text strings.Builder
	sawBOS := false
	_, err := e.Generate(context.Background(), Request{Prompt: tokens(t, e, "Once upon a time", true), MaxTokens: 1000, Sampling: sp, IgnoreEOS: true},
		func(tk Token) {
			sawBOS = sawBOS || tk.ID == bos[0]
			text.WriteString(tk.Text)
		})
	if err != nil {
		t.Fatal(err)
	}
	if !sawBOS {
		t.Fatal("the model emitted no BOS in 1000 tokens; the test checks nothing")
	}
	for _, special := range []string{"<s>", "</s>"} {
		if strings.Contains(text.String(), special) {
			t.Errorf("output shows %q: %q", special, text.String())
		}
	}
	if !strings.Contains(text.String(), "Once") && !strings.Contains(text.String(), "girl") {
		t.Errorf("output is not the model's English: %q", text.String())
	}
	if e.Piece(bos[0]) != "" {
		t.Errorf("Piece(BOS) = %q, want empty", e.Piece(bos[0]))
	}
}

// writeModel writes a variant of the tiny synth model: edit changes its
// metadata; withTensors false leaves every tensor out.
func writeModel(t *testing.T, edit func(w *gguf.Writer), withTensors bool) string {
	t.Helper()
	p, err := gguf.LookupPreset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	w := p.Writer(1)
	if !withTensors {
		f, err := gguf.ReadFile(tinyModel(t))
		if err != nil {
			t.Fatal(err)
		}
		w = gguf.NewWriter()
		for _, kv := range f.KV {
			w.Set(kv.Key, kv.Value)
		}
	}
	edit(w)
	path := filepath.Join(t.TempDir(), "variant.gguf")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := w.WriteTo(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadErrorsSayWhy(t *testing.T) {
	notGGUF := filepath.Join(t.TempDir(), "notes.gguf")
	if err := os.WriteFile(notGGUF, []byte("these are not the weights you are looking for"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		opts Options
		want string
	}{
		{"unknown architecture", writeModel(t, func(w *gguf.Writer) { w.Set("general.architecture", "qwen35") }, true), Options{}, "unknown model architecture: 'qwen35'"},
		{"missing tensor", writeModel(t, func(*gguf.Writer) {}, false), Options{}, "missing tensor 'token_embd.weight'"},
		{"not a GGUF file", notGGUF, Options{}, "invalid magic"},
		{"unknown KV cache type", tinyModel(t), Options{KVCacheType: "q5_1"}, `kv cache type "q5_1" is not supported; use f16, q8_0 or q4_0`},
		{"quantized V cache without flash attention", tinyModel(t), Options{KVCacheType: "q8_0"}, "needs flash attention"},
		{"unknown chat template", tinyModel(t), Options{ChatTemplate: "klingon"}, `chat template "klingon" is not a built-in template; use one of`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Load(context.Background(), tt.path, tt.opts)
			if err == nil {
				e.Close()
				t.Fatal("loaded")
			}
			if !errors.Is(err, ErrLoad) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want ErrLoad saying %q", err, tt.want)
			}
		})
	}
}

func TestOptionsReachLlamaCpp(t *testing.T) {
	tests := []struct {
		opts Options
		kv   string
	}{
		{Options{}, "f16"},
		{Options{FlashAttention: true}, "f16"},
		{Options{FlashAttention: true, KVCacheType: "q8_0"}, "q8_0"},
		{Options{FlashAttention: true, KVCacheType: "q4_0"}, "q4_0"},
	}
	for _, tt := range tests {
		tt.opts.CtxSize = 256
		e := load(t, tt.opts)
		info := e.Info()
		if info.KVCacheType != tt.kv || info.FlashAttention != tt.opts.FlashAttention {
			t.Errorf("%+v: info %+v", tt.opts, info)
		}
		if _, st := run(t, e, context.Background(), Request{Prompt: tokens(t, e, "hello there", true), MaxTokens: 5, Sampling: greedy(), IgnoreEOS: true}); st.Tokens != 5 {
			t.Errorf("%+v: %d tokens", tt.opts, st.Tokens)
		}
		e.Close()
	}
}

func TestChatTemplates(t *testing.T) {
	unknown := writeModel(t, func(w *gguf.Writer) { w.Set("tokenizer.chat_template", "{{ nobody knows this layout }}") }, true)
	tests := []struct {
		path     string
		opts     Options
		shown    string
		contains string // in the rendered prompt
	}{
		{tinyModel(t), Options{}, "chatml", "<|im_start|>user\nHi<|im_end|>"},
		{sharedModel(t, "qwen2-Q4_K_M.gguf"), Options{}, "chatml", "<|im_start|>user\nHi<|im_end|>"},
		{sharedModel(t, "llama3-Q4_K_M.gguf"), Options{}, "llama3", "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"},
		{sharedModel(t, "phi3-Q4_K_M.gguf"), Options{}, "phi3", "<|user|>\nHi<|end|>"},
		{sharedModel(t, "stories260K.gguf"), Options{}, chatMLNoTemplate, "<|im_start|>user\nHi<|im_end|>"},
		{unknown, Options{}, chatMLUnrecognised, "<|im_start|>user\nHi<|im_end|>"},
		{sharedModel(t, "qwen2-Q4_K_M.gguf"), Options{ChatTemplate: "llama2"}, "llama2", "[INST] Hi [/INST]"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path)+"/"+tt.opts.ChatTemplate, func(t *testing.T) {
			tt.opts.CtxSize = 256
			e := loadPath(t, tt.path, tt.opts)
			if got := e.Info().ChatTemplate; got != tt.shown {
				t.Errorf("chat template shown as %q, want %q", got, tt.shown)
			}
			prompt, _ := e.RenderChat([]Message{{Role: "user", Content: "Hi"}})
			if !strings.Contains(prompt, tt.contains) {
				t.Errorf("rendered %q, want it to contain %q", prompt, tt.contains)
			}
		})
	}
}

func TestTrainedContext(t *testing.T) {
	f, err := gguf.ReadFile(tinyModel(t))
	if err != nil {
		t.Fatal(err)
	}
	want, ok := f.Uint("llama.context_length")
	if !ok || want == 0 {
		t.Fatal("the tiny model has no llama.context_length")
	}
	if got := load(t, Options{CtxSize: 128}).Info().TrainedCtx; got != int(want) {
		t.Fatalf("trained context %d, want %d", got, want)
	}
}

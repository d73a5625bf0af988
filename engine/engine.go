// Package engine runs a llama.cpp model: it loads a GGUF file, tokenizes, and
// decodes up to N sequences ("slots") together in one batch per step
// (continuous batching), with per-sequence sampling, stop strings, statistics
// and cancellation. It is the only package that imports the llama.cpp binding.
//
// One goroutine owns the llama context. Each step it decodes one batch that
// holds prompt chunks of newly admitted requests plus one token for every
// sequence that is generating, so a request that arrives while others
// generate joins at the next step.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/ollama/ollama/llama"
)

// Errors returned by Load and Start.
var (
	// ErrBusy means every slot holds a sequence; retry later.
	ErrBusy = errors.New("all slots are busy")
	// ErrClosed means the engine was closed.
	ErrClosed = errors.New("engine is closed")
	// ErrLoad means the model cannot be loaded as asked, and loading it again
	// the same way fails the same way: llama.cpp refused the file (its
	// reason is in the error) or the options are invalid.
	ErrLoad = errors.New("unable to load the model")
)

// Info describes a loaded model and how the engine runs it.
type Info struct {
	Path           string `json:"path"`
	FileBytes      int64  `json:"file_bytes"`
	TensorBytes    uint64 `json:"tensor_bytes"`
	Arch           string `json:"arch"`
	Name           string `json:"name"`
	Vocab          int    `json:"vocab"`
	Slots          int    `json:"slots"`
	CtxSize        int    `json:"ctx_size"`
	TrainedCtx     int    `json:"trained_ctx"` // context length the model was trained with
	Threads        int    `json:"threads"`
	FlashAttention bool   `json:"flash_attention"`
	KVCacheType    string `json:"kv_cache_type"`
	Embeddings     bool   `json:"embeddings"`
	// ChatTemplate names how chats are rendered: a built-in template name
	// ("chatml", "llama3", ...) or ChatML with the reason it is a fallback.
	ChatTemplate string `json:"chat_template"`
	// Backend is what llama.cpp computes with: the backend and CPU variant.
	Backend Backend `json:"backend"`
}

// Engine is a loaded model with its shared context. Its methods are safe for
// concurrent use.
type Engine struct {
	info     Info
	opts     Options
	model    *llama.Model
	lc       *llama.Context
	batch    *llama.Batch
	pieces   pieceCache
	template string    // what RenderChat passes to llama.cpp; "" for ChatML
	pooling  int       // llama.cpp's pooling type, with embeddings on
	feeding  []*Stream // the scheduler's scratch list for prefillOrder

	admit     chan *Stream  // requests that hold a slot, for the scheduler
	exclusive chan func()   // work that runs between steps (benchmarks, embeddings)
	quit      chan struct{} // closed by Close
	done      chan struct{} // closed when the scheduler has exited
	mu        sync.Mutex    // guards free, cached, used, ticks and closed
	free      []int         // free slot (sequence) ids
	cached    [][]int       // per slot: the tokens its KV cells hold
	used      []uint64      // per slot: the tick its last request ended at
	ticks     uint64        // requests ended so far
	closed    bool
	closeOnce sync.Once
}

// Load maps the GGUF file at path into memory and prepares a context with
// opts.Slots sequences of opts.CtxSize tokens each. Close releases all of it,
// so a process may load models again and again. ctx is checked before and
// after the (uninterruptible) file load. A file llama.cpp refuses and
// invalid options give an error that wraps ErrLoad.
func Load(ctx context.Context, path string, opts Options) (*Engine, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrLoad, path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("model file: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	initBackends()
	model, err := loadModel(path, opts)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		llama.FreeModel(model)
		return nil, err
	}
	var lc *llama.Context
	errs := captureErrors(func() { lc, err = llama.NewContextWithModel(model, opts.contextParams()) })
	if err != nil {
		llama.FreeModel(model)
		if cause := logCause(errs); cause != "" {
			err = fmt.Errorf("%w: %s", err, cause)
		}
		return nil, fmt.Errorf("creating a context of %d×%d tokens for %s: %w (try a smaller --ctx-size or fewer --slots)", opts.Slots, opts.CtxSize, path, err)
	}
	setEmbeddings(lc, opts.Embeddings)
	batch, err := llama.NewBatch(opts.ubatch(), 1, 0)
	if err != nil {
		freeContext(lc)
		llama.FreeModel(model)
		return nil, err
	}
	e := newEngine(opts, model, lc, batch)
	e.info = e.describe(path, fi.Size())
	go e.run()
	slog.Info("model loaded", "path", path, "arch", e.info.Arch, "vocab", e.info.Vocab,
		"slots", opts.Slots, "ctx_size", opts.CtxSize, "threads", opts.Threads,
		"chat_template", e.info.ChatTemplate, "kv_cache_type", opts.KVCacheType, "flash_attention", opts.FlashAttention)
	if e.info.TrainedCtx > 0 && opts.CtxSize > e.info.TrainedCtx {
		slog.Warn("the context size exceeds the context the model was trained with; output past that length degrades",
			"ctx_size", opts.CtxSize, "trained_ctx", e.info.TrainedCtx, "path", path)
	}
	return e, nil
}

// loadModel loads the file with llama.cpp, returning llama.cpp's reason when
// it refuses the file.
func loadModel(path string, opts Options) (*llama.Model, error) {
	mp, err := opts.modelParams()
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrLoad, path, err)
	}
	if mp.Progress == nil {
		mp.Progress = func(float32) {}
	}
	var model *llama.Model
	errs := captureErrors(func() { model, err = llama.LoadModelFromFile(path, mp) })
	if err == nil {
		return model, nil
	}
	cause := logCause(errs)
	if cause == "" {
		cause = err.Error()
	}
	return nil, fmt.Errorf("%w %s: %s (is it a llama.cpp GGUF file? `rbee model inspect %s` shows its metadata)", ErrLoad, path, cause, path)
}

func newEngine(opts Options, model *llama.Model, lc *llama.Context, batch *llama.Batch) *Engine {
	e := &Engine{
		opts:      opts,
		model:     model,
		lc:        lc,
		batch:     batch,
		admit:     make(chan *Stream, opts.Slots),
		exclusive: make(chan func()),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
		cached:    make([][]int, opts.Slots),
		used:      make([]uint64, opts.Slots),
		pooling:   poolingType(lc),
	}
	e.pieces.init(model)
	for i := range opts.Slots {
		e.free = append(e.free, i)
	}
	return e
}

// describe is the Info of a freshly loaded engine; it also settles the chat
// template.
func (e *Engine) describe(path string, fileBytes int64) Info {
	tmpl, shown := resolveTemplate(e.model, e.opts.ChatTemplate)
	e.template = tmpl
	return Info{
		Path:           path,
		FileBytes:      fileBytes,
		TensorBytes:    modelSize(e.model),
		Arch:           modelMeta(e.model, "general.architecture"),
		Name:           modelMeta(e.model, "general.name"),
		Vocab:          e.model.NumVocab(),
		Slots:          e.opts.Slots,
		CtxSize:        e.opts.CtxSize,
		TrainedCtx:     trainedContext(e.model),
		Threads:        e.opts.Threads,
		FlashAttention: e.opts.FlashAttention,
		KVCacheType:    e.opts.KVCacheType,
		Embeddings:     e.opts.Embeddings,
		ChatTemplate:   shown,
		Backend:        e.backend(),
	}
}

// Info returns what the engine runs.
func (e *Engine) Info() Info { return e.info }

// Slots returns the number of slots and how many of them are free.
func (e *Engine) Slots() (total, free int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.opts.Slots, len(e.free)
}

// Tokenize turns text into token ids, adding the model's BOS token when
// addSpecial is set and the model wants one.
func (e *Engine) Tokenize(text string, addSpecial bool) ([]int, error) {
	return e.model.Tokenize(text, addSpecial, true)
}

// Piece returns the text of one token as output shows it (control tokens
// are empty).
func (e *Engine) Piece(token int) string { return tokenText(e.model, token) }

// Close cancels every sequence, stops the scheduler and frees the context and
// the model. It is safe to call more than once.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		e.mu.Unlock()
		close(e.quit)
		<-e.done
		e.batch.Free()
		freeContext(e.lc)
		llama.FreeModel(e.model)
		e.lc, e.model, e.batch = nil, nil, nil
	})
	return nil
}

// release returns a slot id to the free list with the tokens its KV cells
// hold.
func (e *Engine) release(id int, cached []int) {
	e.mu.Lock()
	e.free = append(e.free, id)
	e.cached[id] = cached
	e.ticks++
	e.used[id] = e.ticks
	e.mu.Unlock()
}

// pieceCache keeps the text of each token, filled on first use, so that a
// generated token costs no allocation. Only the scheduler goroutine uses it.
type pieceCache struct {
	model *llama.Model
	text  []string
	known []bool
}

func (p *pieceCache) init(m *llama.Model) {
	n := m.NumVocab()
	p.model, p.text, p.known = m, make([]string, n), make([]bool, n)
}

func (p *pieceCache) get(tok int) string {
	if tok < 0 || tok >= len(p.text) {
		return ""
	}
	if !p.known[tok] {
		p.text[tok], p.known[tok] = tokenText(p.model, tok), true
	}
	return p.text[tok]
}

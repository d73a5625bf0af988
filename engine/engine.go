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
	"github.com/ollama/ollama/ml"

	"github.com/rbee-dev/rbee/engine/cpu"
)

// Errors returned by Start.
var (
	// ErrBusy means every slot holds a sequence; retry later.
	ErrBusy = errors.New("all slots are busy")
	// ErrClosed means the engine was closed.
	ErrClosed = errors.New("engine is closed")
)

// Options configure Load. Zero values pick the defaults noted on each field.
type Options struct {
	Slots        int           // sequences decoded together; default 1
	CtxSize      int           // context length of each slot, in tokens; default 2048
	Threads      int           // CPU threads; 0 = number of physical cores
	PrefillChunk int           // prompt tokens fed per step over all new sequences; default 128
	Progress     func(float32) // called while the file loads, 0..1
}

// Info describes a loaded model and how the engine runs it.
type Info struct {
	Path         string `json:"path"`
	FileBytes    int64  `json:"file_bytes"`
	TensorBytes  uint64 `json:"tensor_bytes"`
	Arch         string `json:"arch"`
	Name         string `json:"name"`
	Vocab        int    `json:"vocab"`
	Slots        int    `json:"slots"`
	CtxSize      int    `json:"ctx_size"`
	Threads      int    `json:"threads"`
	ChatTemplate string `json:"-"`
}

// Engine is a loaded model with its shared context. Its methods are safe for
// concurrent use.
type Engine struct {
	info   Info
	opts   Options
	model  *llama.Model
	lc     *llama.Context
	batch  *llama.Batch
	pieces pieceCache

	admit     chan *Stream  // requests that hold a slot, for the scheduler
	exclusive chan func()   // work that needs the context alone (benchmarks)
	quit      chan struct{} // closed by Close
	done      chan struct{} // closed when the scheduler has exited
	mu        sync.Mutex    // guards free and closed
	free      []int         // free slot (sequence) ids
	closed    bool
	closeOnce sync.Once
}

var backendOnce sync.Once

// Load maps the GGUF file at path into memory and prepares a context with
// opts.Slots sequences of opts.CtxSize tokens each. Close releases all of it,
// so a process may load models again and again. ctx is checked before and
// after the (uninterruptible) file load.
func Load(ctx context.Context, path string, opts Options) (*Engine, error) {
	if opts.Slots <= 0 {
		opts.Slots = 1
	}
	if opts.CtxSize <= 0 {
		opts.CtxSize = 2048
	}
	if opts.Threads <= 0 {
		opts.Threads = cpu.PhysicalCores()
	}
	if opts.PrefillChunk <= 0 {
		opts.PrefillChunk = 128
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("model file: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	backendOnce.Do(llama.BackendInit)

	mp := llama.ModelParams{UseMmap: true, Progress: opts.Progress}
	if mp.Progress == nil {
		mp.Progress = func(float32) {}
	}
	model, err := llama.LoadModelFromFile(path, mp)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w (is it a llama.cpp GGUF file? `rbee model inspect %s` shows its metadata)", path, err, path)
	}
	if err := ctx.Err(); err != nil {
		llama.FreeModel(model)
		return nil, err
	}
	ubatch := opts.PrefillChunk + opts.Slots
	cp := llama.NewContextParams(opts.CtxSize*opts.Slots, ubatch, opts.Slots, opts.Threads, ml.FlashAttentionAuto, "")
	lc, err := llama.NewContextWithModel(model, cp)
	if err != nil {
		llama.FreeModel(model)
		return nil, fmt.Errorf("creating a context of %d×%d tokens for %s: %w (try a smaller --ctx-size or fewer --slots)", opts.Slots, opts.CtxSize, path, err)
	}
	batch, err := llama.NewBatch(ubatch, 1, 0)
	if err != nil {
		freeContext(lc)
		llama.FreeModel(model)
		return nil, err
	}
	e := &Engine{
		opts:      opts,
		model:     model,
		lc:        lc,
		batch:     batch,
		admit:     make(chan *Stream, opts.Slots),
		exclusive: make(chan func()),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	e.info = Info{
		Path:         path,
		FileBytes:    fi.Size(),
		TensorBytes:  modelSize(model),
		Arch:         modelMeta(model, "general.architecture"),
		Name:         modelMeta(model, "general.name"),
		Vocab:        model.NumVocab(),
		Slots:        opts.Slots,
		CtxSize:      opts.CtxSize,
		Threads:      opts.Threads,
		ChatTemplate: chatTemplate(model),
	}
	e.pieces.init(model)
	for i := range opts.Slots {
		e.free = append(e.free, i)
	}
	go e.run()
	slog.Info("model loaded", "path", path, "arch", e.info.Arch, "vocab", e.info.Vocab,
		"slots", opts.Slots, "ctx_size", opts.CtxSize, "threads", opts.Threads)
	return e, nil
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

// Piece returns the text of one token.
func (e *Engine) Piece(token int) string { return e.model.TokenToPiece(token) }

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

// release returns a slot id to the free list.
func (e *Engine) release(id int) {
	e.mu.Lock()
	e.free = append(e.free, id)
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
		p.text[tok], p.known[tok] = p.model.TokenToPiece(tok), true
	}
	return p.text[tok]
}

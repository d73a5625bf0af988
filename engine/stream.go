package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ollama/ollama/llama"
)

// Request is one generation: a tokenized prompt and how to continue it.
type Request struct {
	Prompt    []int    // tokens, from Tokenize
	MaxTokens int      // tokens to generate at most (> 0)
	Sampling  Sampling // DefaultSampling() if unsure
	Stop      []string // generation ends before the first of these strings
	IgnoreEOS bool     // keep going past end-of-generation tokens (benchmarks, tests)
	// NoPromptCache starts from an empty slot and clears it afterwards,
	// instead of reusing the KV cells of the longest cached prefix.
	NoPromptCache bool
	// Grammar is a GBNF grammar (root rule "root") the output must follow;
	// see JSONSchemaGrammar. Empty: no constraint.
	Grammar string
}

// StopReason says why a sequence ended.
type StopReason string

// The reasons a sequence ends.
const (
	StopMaxTokens StopReason = "max_tokens"   // MaxTokens generated
	StopEOS       StopReason = "eos"          // the model emitted an end-of-generation token
	StopString    StopReason = "stop"         // a stop string appeared
	StopCancelled StopReason = "cancelled"    // the request's context ended
	StopContext   StopReason = "context_full" // the slot's context is full
	StopError     StopReason = "error"        // decoding failed; see Stream.Err
)

// Token is one generated token and the text it releases.
type Token struct {
	Index int    // 0-based position among generated tokens; -1 for the final flush after EOS
	ID    int    // token id; -1 for the final flush
	Text  string // may be "" while a multi-byte character or a possible stop string is incomplete
}

// Stats describe a finished sequence.
type Stats struct {
	PromptTokens int
	CachedTokens int           // prompt tokens whose KV cells were reused from the slot's last request
	PromptTime   time.Duration // from admission to the first generated token
	Tokens       int           // generated tokens
	DecodeTime   time.Duration // from the first generated token to the last
	StopReason   StopReason
}

// TokensPerSecond is the decode rate after the first token.
func (s Stats) TokensPerSecond() float64 {
	if s.Tokens < 2 || s.DecodeTime <= 0 {
		return 0
	}
	return float64(s.Tokens-1) / s.DecodeTime.Seconds()
}

// ErrRequest wraps every error about a request's content.
var ErrRequest = errors.New("invalid request")

// Stream is one running sequence. Read C until it is closed, then Stats and Err.
type Stream struct {
	// C delivers tokens in order; it is closed when the sequence ends. It is
	// buffered for MaxTokens, so a slow reader never stalls other sequences.
	C <-chan Token

	ch    chan Token
	ctx   context.Context
	req   Request
	slot  int
	stats Stats
	err   error

	// scheduler state
	sampler    *llama.SamplingContext
	reuse      int   // prompt tokens already in the slot's KV cells
	kv         []int // the tokens in the slot's KV cells, in order
	fed        int   // prompt tokens in the KV cache
	pos        int   // next position
	generating bool  // prompt fully fed
	sampleNow  bool  // has logits in the current batch
	iBatch     int
	last       int
	pending    string // text held back (incomplete UTF-8 or possible stop string)
	admitted   time.Time
	firstToken time.Time
	finished   bool
}

// Stats returns the sequence's statistics; complete once C is closed.
func (s *Stream) Stats() Stats { return s.stats }

// Err returns why decoding failed (StopError) or ErrClosed; nil otherwise.
func (s *Stream) Err() error { return s.err }

// Slot is the slot (sequence id) the stream runs in.
func (s *Stream) Slot() int { return s.slot }

// Start admits req into a free slot and returns at once; the tokens arrive
// on the stream. It returns ErrBusy when every slot is taken. Cancelling ctx
// ends the sequence and frees its slot and KV cells at the next step.
func (e *Engine) Start(ctx context.Context, req Request) (*Stream, error) {
	if len(req.Prompt) == 0 {
		return nil, fmt.Errorf("%w: the prompt is empty", ErrRequest)
	}
	if req.MaxTokens <= 0 {
		return nil, fmt.Errorf("%w: max_tokens must be at least 1", ErrRequest)
	}
	if n := len(req.Prompt) + req.MaxTokens; n > e.opts.CtxSize {
		return nil, fmt.Errorf("%w: prompt (%d tokens) + max_tokens (%d) exceed the context of %d tokens per slot; shorten the prompt, lower max_tokens or raise ctx_size",
			ErrRequest, len(req.Prompt), req.MaxTokens, e.opts.CtxSize)
	}
	e.mu.Lock()
	closed, free := e.closed, len(e.free)
	e.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if free == 0 {
		return nil, ErrBusy
	}
	if err := e.checkGrammar(req.Grammar); err != nil {
		return nil, err
	}
	sp := req.Sampling.params()
	sp.Grammar = req.Grammar
	sampler, err := llama.NewSamplingContext(e.model, sp)
	if err != nil {
		return nil, fmt.Errorf("sampler: %w", err)
	}
	ch := make(chan Token, req.MaxTokens+1)
	s := &Stream{C: ch, ch: ch, ctx: ctx, req: req, sampler: sampler}
	s.stats.PromptTokens = len(req.Prompt)
	if err := e.admitStream(s); err != nil {
		freeSampler(sampler)
		return nil, err
	}
	return s, nil
}

// admitStream gives s a free slot and hands it to the scheduler. Holding the
// lock across both keeps Close from missing a stream.
func (e *Engine) admitStream(s *Stream) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	if len(e.free) == 0 {
		return ErrBusy
	}
	// The lowest free slot: sequences then keep to the same KV cells.
	i, reuse := e.pickSlot(s.req.Prompt, !s.req.NoPromptCache)
	s.slot, s.reuse = e.free[i], reuse
	e.free = append(e.free[:i], e.free[i+1:]...)
	e.cached[s.slot] = nil // the stream owns the slot's cells now
	e.admit <- s           // never blocks: capacity is the slot count
	return nil
}

// Generate runs req to the end, calling fn for every token, and returns the
// statistics.
func (e *Engine) Generate(ctx context.Context, req Request, fn func(Token)) (Stats, error) {
	s, err := e.Start(ctx, req)
	if err != nil {
		return Stats{}, err
	}
	for t := range s.C {
		if fn != nil {
			fn(t)
		}
	}
	return s.Stats(), s.Err()
}

// run is the scheduler: the only goroutine that touches the llama context.
func (e *Engine) run() {
	defer close(e.done)
	active := make([]*Stream, 0, e.opts.Slots)
	for {
		if len(active) == 0 {
			select {
			case s := <-e.admit:
				active = append(active, e.begin(s))
			case f := <-e.exclusive:
				f()
				continue
			case <-e.quit:
				e.stopAll(active)
				return
			}
		}
	drain:
		for {
			select {
			case s := <-e.admit:
				active = append(active, e.begin(s))
			case f := <-e.exclusive:
				f()
			case <-e.quit:
				e.stopAll(active)
				return
			default:
				break drain
			}
		}
		for _, s := range active {
			if s.ctx.Err() != nil {
				e.finish(s, StopCancelled, nil)
			}
		}
		active = compact(active)
		if len(active) > 0 {
			e.step(active)
			active = compact(active)
		}
	}
}

func (e *Engine) begin(s *Stream) *Stream {
	s.admitted = time.Now()
	e.reuseCache(s)
	return s
}

func compact(active []*Stream) []*Stream {
	out := active[:0]
	for _, s := range active {
		if !s.finished {
			out = append(out, s)
		}
	}
	clear(active[len(out):])
	return out
}

// step decodes one batch: one token for every generating sequence, then
// prompt chunks for new ones (feedPrompts), and samples every sequence that
// has logits.
func (e *Engine) step(active []*Stream) {
	b := e.batch
	b.Clear()
	for _, s := range active {
		s.sampleNow = false
		if s.generating {
			s.iBatch = b.NumTokens()
			b.Add(s.last, nil, s.pos, true, s.slot)
			s.kv = append(s.kv, s.last)
			s.pos++
			s.sampleNow = true
		}
	}
	e.feedPrompts(active)
	if b.NumTokens() == 0 {
		return
	}
	if err := e.lc.Decode(b); err != nil {
		for _, s := range active {
			e.finish(s, StopError, fmt.Errorf("decoding failed: %w", err))
		}
		return
	}
	now := time.Now()
	for _, s := range active {
		if !s.sampleNow {
			continue
		}
		tok := s.sampler.Sample(e.lc, s.iBatch)
		s.sampler.Accept(tok, true)
		if !s.generating {
			s.generating = true
			s.firstToken = now
			s.stats.PromptTime = now.Sub(s.admitted)
		}
		e.emit(s, tok, now)
	}
}

// feedPrompts adds prompt chunks of the sequences still feeding to the
// batch, up to PrefillChunk tokens, shortest remaining first. On the CPU a
// step's time grows with its tokens, so a step that completes a prompt
// takes no other: of two turns that arrive together the first is answered
// after its own prefill instead of after both. On a GPU a few hundred tokens
// cost about what one does, and prompts share the step.
func (e *Engine) feedPrompts(active []*Stream) {
	b := e.batch
	budget := e.opts.PrefillChunk
	for _, s := range e.prefillOrder(active) {
		if budget == 0 {
			break
		}
		n := min(budget, s.promptLeft())
		s.kv = append(s.kv, s.req.Prompt[s.fed:s.fed+n]...)
		for i := range n {
			lastOfPrompt := s.fed+i == len(s.req.Prompt)-1
			b.Add(s.req.Prompt[s.fed+i], nil, s.pos, lastOfPrompt, s.slot)
			s.pos++
			if lastOfPrompt {
				s.iBatch = b.NumTokens() - 1
				s.sampleNow = true
			}
		}
		s.fed += n
		budget -= n
		if s.sampleNow && e.opts.Backend != BackendCUDA {
			break
		}
	}
}

// prefillOrder returns the sequences still feeding their prompt, the one
// with the fewest prompt tokens left first (ties: the earliest admitted).
// Shortest-remaining-first minimises the mean time to first token: a turn
// whose conversation is cached needs a few tokens and is answered at the
// next step instead of waiting behind another request's long prompt. A long
// prompt cannot starve: there are at most as many sequences as slots.
func (e *Engine) prefillOrder(active []*Stream) []*Stream {
	e.feeding = e.feeding[:0]
	for _, s := range active {
		if !s.generating {
			e.feeding = append(e.feeding, s)
		}
	}
	slices.SortStableFunc(e.feeding, func(a, b *Stream) int { return a.promptLeft() - b.promptLeft() })
	return e.feeding
}

// promptLeft is how many prompt tokens s has still to feed.
func (s *Stream) promptLeft() int { return len(s.req.Prompt) - s.fed }

// emit delivers one sampled token and ends the sequence when it should.
func (e *Engine) emit(s *Stream, tok int, now time.Time) {
	eog := e.model.TokenIsEog(tok)
	if eog && !s.req.IgnoreEOS {
		if s.pending != "" {
			s.ch <- Token{Index: -1, ID: -1, Text: s.pending}
			s.pending = ""
		}
		e.finishAt(s, StopEOS, nil, now)
		return
	}
	s.stats.Tokens++
	last := s.stats.Tokens >= s.req.MaxTokens
	piece := ""
	if !eog {
		piece = e.pieces.get(tok)
	}
	text, stopped := s.release(piece, last)
	s.ch <- Token{Index: s.stats.Tokens - 1, ID: tok, Text: text}
	s.last = tok
	switch {
	case stopped:
		e.finishAt(s, StopString, nil, now)
	case last:
		e.finishAt(s, StopMaxTokens, nil, now)
	case s.pos >= e.opts.CtxSize:
		e.finishAt(s, StopContext, nil, now)
	}
}

// release appends piece to the held-back text and returns what may be shown:
// everything except an incomplete UTF-8 character or a tail that could start
// a stop string. stopped reports that a stop string was found; the text
// before it is returned. final releases everything.
func (s *Stream) release(piece string, final bool) (text string, stopped bool) {
	if len(s.req.Stop) == 0 && s.pending == "" && incompleteTail(piece) == 0 {
		return piece, false // the common case: no copy
	}
	text = s.pending + piece
	for _, stop := range s.req.Stop {
		if i := strings.Index(text, stop); i >= 0 {
			s.pending = ""
			return text[:i], true
		}
	}
	if final {
		s.pending = ""
		return text, false
	}
	hold := incompleteTail(text)
	for _, stop := range s.req.Stop {
		for k := min(len(stop)-1, len(text)); k > hold; k-- {
			if strings.HasSuffix(text, stop[:k]) {
				hold = k
				break
			}
		}
	}
	s.pending = text[len(text)-hold:]
	return text[:len(text)-hold], false
}

// incompleteTail returns how many bytes at the end of s start a UTF-8
// character that is not complete yet.
func incompleteTail(s string) int {
	for i := 1; i <= 3 && i <= len(s); i++ {
		c := s[len(s)-i]
		if c < 0x80 {
			return 0
		}
		if c >= 0xC0 { // a leading byte
			need := 2
			if c >= 0xF0 {
				need = 4
			} else if c >= 0xE0 {
				need = 3
			}
			if need > i {
				return i
			}
			return 0
		}
	}
	return 0
}

func (e *Engine) finish(s *Stream, reason StopReason, err error) {
	e.finishAt(s, reason, err, time.Now())
}

// finishAt ends a sequence: it keeps the slot's KV cells for the prompt
// cache (or clears them), frees the sampler, returns the slot and closes the
// channel.
func (e *Engine) finishAt(s *Stream, reason StopReason, err error, now time.Time) {
	if s.finished {
		return
	}
	s.finished = true
	s.stats.StopReason = reason
	if s.generating {
		s.stats.DecodeTime = now.Sub(s.firstToken)
	}
	s.err = err
	kept := e.keepCache(s, err)
	s.kv = nil
	freeSampler(s.sampler)
	s.sampler = nil
	// Return the slot before closing the channel: whoever sees the end of the
	// stream must also see the slot free.
	e.release(s.slot, kept)
	close(s.ch)
}

// stopAll ends every sequence because the engine is closing.
func (e *Engine) stopAll(active []*Stream) {
	for _, s := range active {
		e.finish(s, StopCancelled, ErrClosed)
	}
	for {
		select {
		case s := <-e.admit:
			e.finish(s, StopCancelled, ErrClosed)
		default:
			return
		}
	}
}

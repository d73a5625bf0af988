package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/ollama/ollama/llama"
)

// LoopResult is what DecodeLoop measured.
type LoopResult struct {
	Seqs       int
	Tokens     int           // generated per sequence, the first (from the prompt) included
	PromptTime time.Duration // all prompts
	DecodeTime time.Duration // every step after the prompts
}

// TokensPerSecond is the aggregate decode rate over all sequences, after the
// first token of each.
func (r LoopResult) TokensPerSecond() float64 {
	if r.Tokens < 2 || r.DecodeTime <= 0 {
		return 0
	}
	return float64(r.Seqs*(r.Tokens-1)) / r.DecodeTime.Seconds()
}

// DecodeLoop is the baseline the scheduler is measured against: a bare
// llama.cpp loop on the same context and threads, with no scheduler, channels
// or stop handling. It feeds prompt to seqs sequences, then generates tokens
// tokens for each, decoding one token per sequence per batch and sampling as
// requests are sampled. Every slot must be free; the scheduler admits nothing
// while it runs.
func (e *Engine) DecodeLoop(ctx context.Context, prompt []int, seqs, tokens int, sp Sampling) (LoopResult, error) {
	if seqs < 1 || seqs > e.opts.Slots {
		return LoopResult{}, fmt.Errorf("%w: %d sequences, the engine has %d slots", ErrRequest, seqs, e.opts.Slots)
	}
	if len(prompt) == 0 || tokens < 1 || len(prompt)+tokens > e.opts.CtxSize {
		return LoopResult{}, fmt.Errorf("%w: prompt of %d tokens + %d tokens does not fit a slot of %d", ErrRequest, len(prompt), tokens, e.opts.CtxSize)
	}
	e.mu.Lock()
	if e.closed || len(e.free) != e.opts.Slots {
		e.mu.Unlock()
		return LoopResult{}, ErrBusy
	}
	held := e.free
	e.free = nil
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.free = held
		e.mu.Unlock()
	}()

	var res LoopResult
	var err error
	done := make(chan struct{})
	work := func() {
		defer close(done)
		res, err = e.loop(ctx, prompt, seqs, tokens, sp)
	}
	select {
	case e.exclusive <- work:
	case <-e.quit:
		return LoopResult{}, ErrClosed
	}
	<-done
	return res, err
}

func (e *Engine) loop(ctx context.Context, prompt []int, seqs, tokens int, sp Sampling) (LoopResult, error) {
	res := LoopResult{Seqs: seqs}
	samplers := make([]*llama.SamplingContext, seqs)
	last := make([]int, seqs)
	defer func() {
		for i, sc := range samplers {
			if sc != nil {
				freeSampler(sc)
			}
			e.lc.KvCacheSeqRm(i, -1, -1)
		}
	}()
	e.forgetCaches()
	b := e.batch
	start := time.Now()
	for i := range seqs {
		sc, err := llama.NewSamplingContext(e.model, sp.params())
		if err != nil {
			return res, err
		}
		samplers[i] = sc
		for fed := 0; fed < len(prompt); {
			b.Clear()
			n := min(b.Size(), len(prompt)-fed)
			for j := range n {
				b.Add(prompt[fed+j], nil, fed+j, fed+j == len(prompt)-1, i)
			}
			if err := e.lc.Decode(b); err != nil {
				return res, err
			}
			fed += n
		}
		last[i] = sc.Sample(e.lc, b.NumTokens()-1)
		sc.Accept(last[i], true)
		e.pieces.get(last[i])
	}
	res.PromptTime = time.Since(start)
	res.Tokens = 1
	start = time.Now()
	for pos := len(prompt); res.Tokens < tokens; pos++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		b.Clear()
		for i := range seqs {
			b.Add(last[i], nil, pos, true, i)
		}
		if err := e.lc.Decode(b); err != nil {
			return res, err
		}
		for i, sc := range samplers {
			last[i] = sc.Sample(e.lc, i)
			sc.Accept(last[i], true)
			e.pieces.get(last[i])
		}
		res.Tokens++
	}
	res.DecodeTime = time.Since(start)
	return res, nil
}

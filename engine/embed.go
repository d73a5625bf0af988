package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// Embed returns one embedding per input (token ids, from Tokenize),
// normalised to length 1 as OpenAI's are. The engine must be loaded with
// Options.Embeddings. Vectors are pooled as the GGUF file says, or averaged
// over the tokens when it says nothing. Embeddings run between the steps of
// running generations, in a sequence of their own.
func (e *Engine) Embed(ctx context.Context, inputs [][]int) ([][]float32, error) {
	if !e.opts.Embeddings {
		return nil, fmt.Errorf("%w: the model was loaded without embeddings; load it with embeddings on", ErrRequest)
	}
	if e.pooling == poolingRank {
		return nil, fmt.Errorf("%w: the model is a reranker (rank pooling) and gives scores, not embeddings", ErrRequest)
	}
	if len(inputs) == 0 {
		return nil, fmt.Errorf("%w: no input to embed", ErrRequest)
	}
	limit := min(e.opts.CtxSize, e.batch.Size())
	for i, in := range inputs {
		if len(in) == 0 {
			return nil, fmt.Errorf("%w: input %d is empty", ErrRequest, i)
		}
		if len(in) > limit {
			return nil, fmt.Errorf("%w: input %d has %d tokens, more than the %d a slot holds; shorten it or raise ctx_size", ErrRequest, i, len(in), limit)
		}
	}
	var out [][]float32
	var err error
	done := make(chan struct{})
	work := func() {
		defer close(done)
		out, err = e.embedAll(ctx, inputs)
	}
	select {
	case e.exclusive <- work:
	case <-e.quit:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	<-done
	return out, err
}

// embedAll embeds each input in turn in the sequence after the slots. Only
// the scheduler runs it.
func (e *Engine) embedAll(ctx context.Context, inputs [][]int) ([][]float32, error) {
	out := make([][]float32, len(inputs))
	for i, in := range inputs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		v, err := e.embedOne(in)
		if err != nil {
			return nil, fmt.Errorf("input %d: %w", i, err)
		}
		out[i] = v
	}
	return out, nil
}

func (e *Engine) embedOne(tokens []int) ([]float32, error) {
	seq := e.opts.Slots
	e.lc.KvCacheSeqRm(seq, -1, -1)
	defer e.lc.KvCacheSeqRm(seq, -1, -1)
	b := e.batch
	sum := make([]float64, e.model.NEmbd())
	var pooled []float32
	for fed := 0; fed < len(tokens); {
		b.Clear()
		n := min(b.Size(), len(tokens)-fed)
		for j := range n {
			b.Add(tokens[fed+j], nil, fed+j, true, seq)
		}
		if err := e.lc.Decode(b); err != nil {
			return nil, fmt.Errorf("decoding failed: %w", err)
		}
		fed += n
		if e.pooling != poolingNone {
			pooled = e.lc.GetEmbeddingsSeq(seq) // the whole input is in one batch (Embed checked)
			continue
		}
		for j := range n {
			v := e.lc.GetEmbeddingsIth(j)
			if v == nil {
				return nil, errors.New("llama.cpp returned no embedding for a token")
			}
			for k, x := range v {
				sum[k] += float64(x)
			}
		}
	}
	if e.pooling != poolingNone {
		if pooled == nil {
			return nil, errors.New("llama.cpp returned no pooled embedding")
		}
		for k, x := range pooled {
			sum[k] = float64(x)
		}
	}
	return normalise(sum), nil
}

// normalise scales v to length 1 (a zero vector stays zero).
func normalise(v []float64) []float32 {
	var ss float64
	for _, x := range v {
		ss += x * x
	}
	out := make([]float32, len(v))
	if ss == 0 {
		return out
	}
	inv := 1 / math.Sqrt(ss)
	for i, x := range v {
		out[i] = float32(x * inv)
	}
	return out
}

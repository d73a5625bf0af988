package engine

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
)

// run generates req to the end and returns the token ids and the stats.
func run(t *testing.T, e *Engine, ctx context.Context, req Request) ([]int, Stats) {
	t.Helper()
	var ids []int
	st, err := e.Generate(ctx, req, func(tk Token) {
		if tk.ID >= 0 {
			ids = append(ids, tk.ID)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids, st
}

func tokens(t *testing.T, e *Engine, text string, bos bool) []int {
	t.Helper()
	ids, err := e.Tokenize(text, bos)
	if err != nil || len(ids) == 0 {
		t.Fatalf("tokenize %q: %v %v", text, ids, err)
	}
	return ids
}

const longText = "Once upon a time there was a little girl who lived in a small house near the woods with her mother and her dog, and every morning she walked to the river to look at the fish"

func TestPromptCacheReuse(t *testing.T) {
	tok := load(t, Options{})
	first := tokens(t, tok, longText, true)
	if len(first) < 20 {
		t.Fatalf("prompt of %d tokens is too short for the test", len(first))
	}
	const k = 15
	other := append(slices.Clone(first[:k]), tokens(t, tok, " and then a big red ball rolled down the hill", false)...)
	if other[k] == first[k] {
		t.Fatal("the prompts must differ right after the shared prefix")
	}
	again := slices.Clone(first)
	tests := []struct {
		name   string
		second []int
		cached int // prompt tokens the second request reuses
	}{
		{"shared prefix", other, k},
		{"same prompt again", again, len(first) - 1},                             // the last token is decoded again for its logits
		{"unrelated prompt", tokens(t, tok, "zebra xylophone quantum", true), 1}, // only BOS
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := load(t, Options{Slots: 1, CtxSize: 512})
			req := Request{Prompt: first, MaxTokens: 6, Sampling: greedy(), IgnoreEOS: true}
			if _, st := run(t, e, context.Background(), req); st.CachedTokens != 0 {
				t.Fatalf("first request reused %d tokens of an empty slot", st.CachedTokens)
			}
			req.Prompt = tt.second
			got, st := run(t, e, context.Background(), req)
			if st.CachedTokens != tt.cached || st.PromptTokens != len(tt.second) {
				t.Fatalf("second request: cached %d of %d prompt tokens, want %d", st.CachedTokens, st.PromptTokens, tt.cached)
			}
			// The same request on a cleared slot gives the same tokens.
			req.NoPromptCache = true
			want, st := run(t, e, context.Background(), req)
			if st.CachedTokens != 0 {
				t.Fatalf("a request without the prompt cache reused %d tokens", st.CachedTokens)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("with the cache %v, without %v", got, want)
			}
		})
	}
}

func TestPromptCacheGeneratedTokensAreCached(t *testing.T) {
	e := load(t, Options{Slots: 1, CtxSize: 512})
	prompt := tokens(t, e, longText, true)
	gen, _ := run(t, e, context.Background(), Request{Prompt: prompt, MaxTokens: 8, Sampling: greedy(), IgnoreEOS: true})
	// A next turn: the prompt, the reply, and more. The last generated token
	// was sampled but never decoded, so the cache holds the reply but that.
	next := append(append(slices.Clone(prompt), gen...), tokens(t, e, " and more", false)...)
	_, st := run(t, e, context.Background(), Request{Prompt: next, MaxTokens: 2, Sampling: greedy(), IgnoreEOS: true})
	if want := len(prompt) + len(gen) - 1; st.CachedTokens != want {
		t.Fatalf("cached %d tokens, want %d (prompt %d + reply %d - 1)", st.CachedTokens, want, len(prompt), len(gen))
	}
}

// cancelAfter is a context whose Err reports Canceled from its n-th call
// on. The scheduler checks Err once before every step, so a request with it
// ends after exactly n-1 steps: a cancellation in the middle of the prefill
// that no timer could place deterministically.
type cancelAfter struct {
	context.Context
	calls atomic.Int32
	n     int32
}

func (c *cancelAfter) Err() error {
	if c.calls.Add(1) >= c.n {
		return context.Canceled
	}
	return nil
}

func TestPromptCacheCancelMidPrefill(t *testing.T) {
	const chunk, steps = 8, 3
	e := load(t, Options{Slots: 1, CtxSize: 512, PrefillChunk: chunk})
	prompt := tokens(t, e, longText, true)
	if len(prompt) <= (steps+1)*chunk {
		t.Fatalf("prompt of %d tokens is too short for the test", len(prompt))
	}
	req := Request{Prompt: prompt, MaxTokens: 6, Sampling: greedy(), IgnoreEOS: true}
	ids, st := run(t, e, &cancelAfter{Context: context.Background(), n: steps + 1}, req)
	if st.StopReason != StopCancelled || len(ids) != 0 {
		t.Fatalf("cancelled request: %+v, %d tokens", st, len(ids))
	}
	got, st := run(t, e, context.Background(), req)
	if st.CachedTokens != steps*chunk {
		t.Fatalf("after a cancel at %d prompt tokens the next request reused %d", steps*chunk, st.CachedTokens)
	}
	req.NoPromptCache = true
	if want, _ := run(t, e, context.Background(), req); !slices.Equal(got, want) {
		t.Fatalf("after the cancel %v, on a clear slot %v", got, want)
	}
}

func TestPromptCacheSlotChoice(t *testing.T) {
	e := load(t, Options{Slots: 3, CtxSize: 256})
	a := tokens(t, e, "the cat sat on the mat and looked out of the window", true)
	b := tokens(t, e, "a dog ran across the field chasing a bright yellow ball", true)
	hold := func(prompt []int, noCache bool) (*Stream, context.CancelFunc) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		s, err := e.Start(ctx, Request{Prompt: prompt, MaxTokens: 200, Sampling: greedy(), IgnoreEOS: true, NoPromptCache: noCache})
		if err != nil {
			t.Fatal(err)
		}
		<-s.C // the prompt is in the cache
		return s, cancel
	}
	end := func(s *Stream, cancel context.CancelFunc) {
		cancel()
		for range s.C {
		}
	}
	sa, ca := hold(a, false) // slot 0
	sb, cb := hold(b, false) // slot 1
	end(sa, ca)
	end(sb, cb)
	// Slots 0 and 1 hold a and b; slot 2 is empty.
	s, c := hold(b, false)
	if s.Slot() != 1 {
		t.Errorf("a request for b's prompt got slot %d, want 1 (its cache)", s.Slot())
	}
	u, cu := hold(tokens(t, e, "zebra xylophone quantum", true), false)
	if u.Slot() != 2 {
		t.Errorf("an unrelated prompt got slot %d, want the empty slot 2 rather than throwing a's cache away", u.Slot())
	}
	end(s, c)
	end(u, cu)
	if s.Stats().CachedTokens != len(b)-1 {
		t.Errorf("b again reused %d tokens, want %d", s.Stats().CachedTokens, len(b)-1)
	}
	n, cn := hold(a, true)
	if n.Slot() != 0 {
		t.Errorf("a request without the cache got slot %d, want the lowest free slot 0", n.Slot())
	}
	end(n, cn)
	if _, st := run(t, e, context.Background(), Request{Prompt: a, MaxTokens: 1, Sampling: greedy()}); st.CachedTokens != 0 {
		t.Errorf("the request without the cache left %d tokens cached in slot 0", st.CachedTokens)
	}
}

// A new conversation that shares only a short preamble with the cached ones
// takes the least recently used slot, not the lowest: the conversation that
// ended last is between turns and keeps its cache for its next turn.
func TestPromptCacheEvictsLeastRecentlyUsed(t *testing.T) {
	e := load(t, Options{Slots: 2, CtxSize: 256})
	pre := "Story time. "
	a := tokens(t, e, pre+"the cat sat on the mat and looked out of the window at the rain", true)
	b := tokens(t, e, pre+"a dog ran across the field chasing a bright yellow ball all day", true)
	c := tokens(t, e, pre+"zebra xylophone quantum", true)
	ctx := context.Background()
	sa, err := e.Start(ctx, Request{Prompt: a, MaxTokens: 200, Sampling: greedy(), IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	<-sa.C
	run(t, e, ctx, Request{Prompt: b, MaxTokens: 1, Sampling: greedy()}) // slot 1 holds b, ended first
	for range sa.C {                                                     // a runs to its end in slot 0, later
	}
	if _, st := run(t, e, ctx, Request{Prompt: c, MaxTokens: 1, Sampling: greedy()}); st.CachedTokens == 0 {
		t.Errorf("the new conversation reused none of the preamble it shares")
	}
	next := append(slices.Clone(a), tokens(t, e, " and then", false)...)
	if _, st := run(t, e, ctx, Request{Prompt: next, MaxTokens: 1, Sampling: greedy()}); st.CachedTokens < len(a)-1 {
		t.Errorf("a's next turn reused %d tokens, want at least %d: the new conversation took the slot a had just left", st.CachedTokens, len(a)-1)
	}
}

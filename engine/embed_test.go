package engine

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
)

func norm(v []float32) float64 {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	return math.Sqrt(ss)
}

func TestEmbed(t *testing.T) {
	for _, path := range []string{tinyModel(t), sharedModel(t, "stories260K.gguf")} {
		e := loadPath(t, path, Options{Slots: 2, CtxSize: 256, Embeddings: true})
		a := tokens(t, e, "the cat sat on the mat", true)
		b := tokens(t, e, "a rocket flew to the moon and back", true)
		vs, err := e.Embed(context.Background(), [][]int{a, b, a})
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != 3 || len(vs[0]) != e.model.NEmbd() {
			t.Fatalf("%d vectors of %d, want 3 of %d", len(vs), len(vs[0]), e.model.NEmbd())
		}
		for i, v := range vs {
			if n := norm(v); math.Abs(n-1) > 1e-4 {
				t.Errorf("%s: vector %d has length %v, want 1", path, i, n)
			}
		}
		if !slices.Equal(vs[0], vs[2]) {
			t.Errorf("%s: the same input gave different vectors", path)
		}
		if slices.Equal(vs[0], vs[1]) {
			t.Errorf("%s: different inputs gave the same vector", path)
		}
		// Alone it is the same vector; a generation running meanwhile does not
		// change it.
		ctx, cancel := context.WithCancel(context.Background())
		s, err := e.Start(ctx, Request{Prompt: b, MaxTokens: 200, Sampling: greedy(), IgnoreEOS: true})
		if err != nil {
			t.Fatal(err)
		}
		<-s.C
		alone, err := e.Embed(context.Background(), [][]int{b})
		if err != nil || !slices.Equal(alone[0], vs[1]) {
			t.Errorf("%s: embedding alone (%v) differs from in a batch", path, err)
		}
		cancel()
		for range s.C {
		}
	}
}

func TestEmbedErrors(t *testing.T) {
	plain := load(t, Options{CtxSize: 64})
	if _, err := plain.Embed(context.Background(), [][]int{{1, 2}}); !errors.Is(err, ErrRequest) {
		t.Errorf("embeddings off: %v, want ErrRequest", err)
	}
	e := load(t, Options{CtxSize: 64, Embeddings: true})
	long := make([]int, 65)
	for _, in := range [][][]int{nil, {{}}, {long}} {
		if _, err := e.Embed(context.Background(), in); !errors.Is(err, ErrRequest) {
			t.Errorf("%d inputs: %v, want ErrRequest", len(in), err)
		}
	}
}

package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rbee-dev/rbee/gguf"
)

var (
	tinyOnce sync.Once
	tinyPath string
	tinyErr  error
)

// tinyModel writes the tiny synth model once per test binary.
func tinyModel(t testing.TB) string {
	t.Helper()
	tinyOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rbee-engine-test")
		if err != nil {
			tinyErr = err
			return
		}
		tinyPath = filepath.Join(dir, "tiny.gguf")
		_, tinyErr = gguf.SynthFile(context.Background(), tinyPath, "tiny", 1)
	})
	if tinyErr != nil {
		t.Fatal(tinyErr)
	}
	return tinyPath
}

// load loads the tiny model. Tests run on one thread unless they say
// otherwise: on a busy machine llama.cpp's threads wait for each other at
// every graph node, and a test that takes a second alone takes minutes.
func load(t *testing.T, opts Options) *Engine {
	t.Helper()
	if opts.Threads == 0 {
		opts.Threads = 1
	}
	e, err := Load(context.Background(), tinyModel(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func greedy() Sampling {
	s := DefaultSampling()
	s.Temperature = 0
	s.Seed = 1
	return s
}

func TestGenerateMaxTokensAndStats(t *testing.T) {
	var progress []float32
	e, err := Load(context.Background(), tinyModel(t), Options{Slots: 2, CtxSize: 256, Progress: func(p float32) { progress = append(progress, p) }})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if len(progress) == 0 || progress[len(progress)-1] != 1 {
		t.Errorf("progress callbacks %v, want ending at 1", progress)
	}
	prompt, err := e.Tokenize("Once upon a time", true)
	if err != nil || len(prompt) == 0 {
		t.Fatalf("tokenize: %v %v", prompt, err)
	}
	var got []Token
	st, err := e.Generate(context.Background(), Request{Prompt: prompt, MaxTokens: 12, Sampling: greedy(), IgnoreEOS: true}, func(tk Token) { got = append(got, tk) })
	if err != nil {
		t.Fatal(err)
	}
	if st.StopReason != StopMaxTokens || st.Tokens != 12 || len(got) != 12 {
		t.Fatalf("tokens %d, events %d, want 12", st.Tokens, len(got))
	}
	if st.PromptTokens != len(prompt) || st.PromptTime <= 0 {
		t.Errorf("stats %+v", st)
	}
	for i, tk := range got {
		if tk.Index != i {
			t.Fatalf("token %d has index %d", i, tk.Index)
		}
	}
	if total, free := e.Slots(); total != 2 || free != 2 {
		t.Fatalf("slots %d/%d after the end", free, total)
	}
}

func TestGreedyIsDeterministicAndBatchingAgrees(t *testing.T) {
	e := load(t, Options{Slots: 4, CtxSize: 256})
	prompt, _ := e.Tokenize("The quick brown fox", true)
	text := func(ctx context.Context) string {
		var b strings.Builder
		_, err := e.Generate(ctx, Request{Prompt: prompt, MaxTokens: 16, Sampling: greedy(), IgnoreEOS: true}, func(tk Token) { b.WriteString(tk.Text) })
		if err != nil {
			t.Error(err)
		}
		return b.String()
	}
	alone := text(context.Background())
	var wg sync.WaitGroup
	outs := make([]string, 4)
	for i := range outs {
		wg.Add(1)
		go func() { defer wg.Done(); outs[i] = text(context.Background()) }()
	}
	wg.Wait()
	for i, o := range outs {
		if o != alone {
			t.Errorf("sequence %d in a batch gave %q, alone %q", i, o, alone)
		}
	}
}

func TestBusyAndCancelFreesSlot(t *testing.T) {
	e := load(t, Options{Slots: 1, CtxSize: 4096})
	prompt, _ := e.Tokenize("hello", true)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := e.Start(ctx, Request{Prompt: prompt, MaxTokens: 4000, Sampling: greedy(), IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	<-s.C // generating
	if _, err := e.Start(context.Background(), Request{Prompt: prompt, MaxTokens: 1, Sampling: greedy()}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second request: %v, want ErrBusy", err)
	}
	cancel()
	for range s.C {
	}
	if s.Stats().StopReason != StopCancelled {
		t.Fatalf("stop reason %q", s.Stats().StopReason)
	}
	if _, free := e.Slots(); free != 1 {
		t.Fatal("slot not freed after cancel")
	}
	// The freed slot starts clean: the same greedy request gives the same text.
	a := collect(t, e, prompt)
	b := collect(t, e, prompt)
	if a != b {
		t.Fatalf("after cancel %q != %q", a, b)
	}
}

func collect(t *testing.T, e *Engine, prompt []int) string {
	var b strings.Builder
	if _, err := e.Generate(context.Background(), Request{Prompt: prompt, MaxTokens: 8, Sampling: greedy()}, func(tk Token) { b.WriteString(tk.Text) }); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestRequestErrors(t *testing.T) {
	e := load(t, Options{Slots: 1, CtxSize: 64})
	for _, r := range []Request{{}, {Prompt: []int{1}}, {Prompt: []int{1}, MaxTokens: 64}} {
		if _, err := e.Start(context.Background(), r); !errors.Is(err, ErrRequest) {
			t.Errorf("%+v: %v, want ErrRequest", r, err)
		}
	}
}

func TestStopStrings(t *testing.T) {
	tests := []struct {
		stops  []string
		pieces []string
		want   []string
		stop   int // index of the piece where the stop is found, -1 none
	}{
		{nil, []string{"a", "b"}, []string{"a", "b"}, -1},
		{[]string{"END"}, []string{"xE", "N", "Dy"}, []string{"x", "", ""}, 2},
		{[]string{"END"}, []string{"xE", "N", "o"}, []string{"x", "", "ENo"}, -1},
		{[]string{"\n\n"}, []string{"a\n", "\nb"}, []string{"a", ""}, 1},
		{nil, []string{"\xe2\x82", "\xac!"}, []string{"", "€!"}, -1},
	}
	for _, tt := range tests {
		s := &Stream{req: Request{Stop: tt.stops}}
		for i, p := range tt.pieces {
			got, stopped := s.release(p, false)
			if got != tt.want[i] {
				t.Errorf("%v %q: piece %d released %q, want %q", tt.stops, tt.pieces, i, got, tt.want[i])
			}
			if stopped != (i == tt.stop) {
				t.Errorf("%v %q: piece %d stopped=%v", tt.stops, tt.pieces, i, stopped)
			}
			if stopped {
				break
			}
		}
	}
}

func TestDecodeLoop(t *testing.T) {
	e := load(t, Options{Slots: 2, CtxSize: 128})
	prompt, _ := e.Tokenize("benchmark", true)
	r, err := e.DecodeLoop(context.Background(), prompt, 2, 10, greedy())
	if err != nil {
		t.Fatal(err)
	}
	if r.Tokens != 10 || r.TokensPerSecond() <= 0 {
		t.Fatalf("%+v", r)
	}
	if _, free := e.Slots(); free != 2 {
		t.Fatal("slots not returned")
	}
}

func TestLoadCloseRepeatedly(t *testing.T) {
	path := tinyModel(t)
	rss := func() int {
		b, _ := os.ReadFile("/proc/self/statm")
		f := strings.Fields(string(b))
		if len(f) < 2 {
			return 0
		}
		n, _ := strconv.Atoi(f[1])
		return n * os.Getpagesize()
	}
	var first int
	var last *Engine
	for i := range 6 {
		e, err := Load(context.Background(), path, Options{Slots: 2, CtxSize: 512})
		if err != nil {
			t.Fatal(err)
		}
		prompt, _ := e.Tokenize("again", true)
		if _, err := e.Generate(context.Background(), Request{Prompt: prompt, MaxTokens: 4, Sampling: greedy()}, nil); err != nil {
			t.Fatal(err)
		}
		e.Close()
		e.Close() // idempotent
		last = e
		if i == 1 {
			first = rss()
		}
	}
	if first > 0 {
		if grown := rss() - first; grown > 32<<20 {
			t.Fatalf("resident memory grew by %d MiB over 4 load/close cycles", grown>>20)
		}
	}
	if _, err := last.Start(context.Background(), Request{Prompt: []int{1}, MaxTokens: 1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("start on a closed engine: %v, want ErrClosed", err)
	}
}

func TestLateRequestJoinsRunningBatch(t *testing.T) {
	e := load(t, Options{Slots: 2, CtxSize: 8192})
	prompt, _ := e.Tokenize("a long one", true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	long, err := e.Start(ctx, Request{Prompt: prompt, MaxTokens: 8000, Sampling: greedy(), IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		<-long.C
	}
	st, err := e.Generate(context.Background(), Request{Prompt: prompt, MaxTokens: 5, Sampling: greedy(), IgnoreEOS: true}, nil)
	if err != nil || st.Tokens != 5 {
		t.Fatalf("late request: %+v, %v", st, err)
	}
	if _, free := e.Slots(); free != 1 {
		t.Fatalf("the long request should still run; %d slots free", free)
	}
	cancel()
	for range long.C {
	}
	if long.Stats().StopReason != StopCancelled || long.Stats().Tokens >= 8000 {
		t.Fatalf("long request: %+v", long.Stats())
	}
}

// A request takes the lowest free slot. With the slot chosen last-in
// first-out, a lone request in slot 3 joined by others in slots 0-2 decoded
// half as fast on every other round of the worker benchmark; lowest-first
// keeps the sequences in the same order every time. (With the prompt cache
// the slot sharing the longest prefix wins; see cache_test.go.)
func TestLowestFreeSlotFirst(t *testing.T) {
	e := load(t, Options{Slots: 3, CtxSize: 256})
	prompt, _ := e.Tokenize("hello", true)
	cancels := map[*Stream]context.CancelFunc{}
	start := func() *Stream {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		s, err := e.Start(ctx, Request{Prompt: prompt, MaxTokens: 200, Sampling: greedy(), IgnoreEOS: true, NoPromptCache: true})
		if err != nil {
			t.Fatal(err)
		}
		cancels[s] = cancel
		return s
	}
	finish := func(s *Stream) {
		cancels[s]()
		for range s.C {
		}
	}
	a, b, c := start(), start(), start()
	if got := []int{a.Slot(), b.Slot(), c.Slot()}; got[0] != 0 || got[1] != 1 || got[2] != 2 {
		t.Fatalf("slots %v, want [0 1 2]", got)
	}
	finish(a)
	finish(c) // slots 0 then 2 come free: last in is 2, lowest is 0
	s := start()
	if s.Slot() != 0 {
		t.Errorf("next request got slot %d, want the lowest free slot 0", s.Slot())
	}
	finish(s)
	finish(b)
}

// A short prompt admitted with a long one is fed first and answered at the
// next step: its first token does not wait behind the long prompt's chunks
// (a cached conversation turn needs a few tokens). Both are admitted while
// the scheduler is held, so they enter the same step in admission order.
// The long prompt takes 40 steps of 8 tokens; the short one generates one
// token per step meanwhile, so when the long one has its token the short
// one has sent at least 38. Fed in admission order, it had sent none.
func TestShortestPromptIsFedFirst(t *testing.T) {
	e := load(t, Options{Slots: 2, CtxSize: 512, PrefillChunk: 8})
	word, _ := e.Tokenize(" story", false)
	long := slices.Repeat(word[:1], 320)
	short, _ := e.Tokenize("hello", true)

	a, b := admitTogether(t, e, long, 1, short, 150)
	for range a.C {
	}
	if n := len(b.C); n < 38 {
		t.Errorf("the short prompt had sent %d tokens when the long one sent its first, want at least 38: it should be fed first", n)
	}
	for range b.C {
	}
}

// On the CPU a step that completes a prompt takes no other: of two short
// prompts admitted together, the first has its token a step before the
// second, which did not wait for both prefills (tokens of one step share
// its time stamp).
func TestOnePromptCompletesPerStep(t *testing.T) {
	e := load(t, Options{Slots: 2, CtxSize: 256})
	prompt, _ := e.Tokenize("hello there", true)
	a, b := admitTogether(t, e, prompt, 1, prompt, 1)
	for range a.C {
	}
	for range b.C {
	}
	if !a.firstToken.Before(b.firstToken) {
		t.Errorf("first tokens at %v and %v: the two prompts were fed in one step", a.firstToken, b.firstToken)
	}
}

// admitTogether starts two greedy requests while the scheduler is held, so
// that both enter the same step in this order.
func admitTogether(t *testing.T, e *Engine, p1 []int, n1 int, p2 []int, n2 int) (*Stream, *Stream) {
	t.Helper()
	release, held := make(chan struct{}), make(chan struct{})
	e.exclusive <- func() { close(held); <-release }
	<-held
	defer close(release)
	start := func(prompt []int, tokens int) *Stream {
		s, err := e.Start(context.Background(), Request{Prompt: prompt, MaxTokens: tokens, Sampling: greedy(), IgnoreEOS: true, NoPromptCache: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return start(p1, n1), start(p2, n2)
}

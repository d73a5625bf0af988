package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/engine"
	"github.com/rbee-dev/rbee/engine/cpu"
)

// Sizes of the prompt cache benchmark.
const (
	cacheBenchPrefix = 450 // tokens of the conversation both turns share
	cacheBenchReply  = 16  // tokens generated per turn
	cacheBenchCtx    = 1024
	cacheBenchText   = "The keeper of the lighthouse wrote every evening about the ships that passed, the weather over the bay and the birds that nested on the rocks below the lamp. "
)

// BenchmarkPromptCache measures, in process on the TinyLlama-shaped Q4_0
// synth model, a chat's second turn against its first: both start with the
// same 450-token conversation, the second adds the first reply and a new
// question. Reported: time to first token of the second turn ÷ the first
// (target ≤ 0.1), and the same ratio with the prompt cache off, which is
// what every turn cost before the cache. Medians of interleaved rounds.
//
// Ollama's own runner is not built as a peer baseline here: its packages
// need modules that rbee's go.sum does not hold, and adding them to rbee's
// module graph for a benchmark is not worth it.
func BenchmarkPromptCache(b *testing.B) {
	bin := rbeeBinary(b)
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	model := benchModel(b, bin)
	threads := cpu.PhysicalCores()
	rounds := benchRounds()
	report := func(format string, args ...any) {
		b.Logf(format, args...)
		fmt.Printf("prompt cache bench: "+format+"\n", args...)
	}
	for range b.N {
		ctx := context.Background()
		eng, err := engine.Load(ctx, model, engine.Options{Slots: 1, CtxSize: cacheBenchCtx, Threads: threads})
		if err != nil {
			b.Fatal(err)
		}
		prefix := cacheBenchConversation(b, eng)
		q1, q2 := cacheBenchTokens(b, eng, " Question: what did he see today?"), cacheBenchTokens(b, eng, " Question: and what of tomorrow?")
		reset := cacheBenchTokens(b, eng, "unrelated")
		report("model %s, %d threads, shared prefix %d tokens, load average before: %s", model, threads, len(prefix), loadAverage())

		var first, second, secondCold []float64
		cached := 0
		for r := range rounds {
			// Empty the slot, so that the first turn starts cold.
			cacheBenchTurn(b, eng, reset, true)
			turn1 := slices.Concat(prefix, q1)
			t1, reply, _ := cacheBenchTurn(b, eng, turn1, false)
			turn2 := slices.Concat(turn1, reply, q2)
			var t2, t2cold time.Duration
			if r%2 == 0 {
				t2, _, cached = cacheBenchTurn(b, eng, turn2, false)
				t2cold, _, _ = cacheBenchTurn(b, eng, turn2, true)
			} else {
				t2cold, _, _ = cacheBenchTurn(b, eng, turn2, true)
				cacheBenchTurn(b, eng, turn1, false) // put the first turn back in the slot
				t2, _, cached = cacheBenchTurn(b, eng, turn2, false)
			}
			first, second, secondCold = append(first, millis(t1)), append(second, millis(t2)), append(secondCold, millis(t2cold))
			report("round %d time to first token: first turn %.1f ms (%d tokens), second turn %.1f ms (%d tokens, %d cached), second turn without the cache %.1f ms",
				r+1, millis(t1), len(turn1), millis(t2), len(turn2), cached, millis(t2cold))
		}
		eng.Close()
		ratio, cold := median(second)/median(first), median(secondCold)/median(first)
		report("load average after: %s", loadAverage())
		report("second turn ÷ first turn, time to first token: %.3f with the prompt cache (target ≤ 0.1), %.3f without it; medians of %d rounds",
			ratio, cold, rounds)
		b.ReportMetric(ratio, "ttft2/ttft1")
		b.ReportMetric(cold, "ttft2-nocache/ttft1")
	}
}

// cacheBenchConversation is cacheBenchPrefix tokens of text.
func cacheBenchConversation(b *testing.B, eng *engine.Engine) []int {
	text := ""
	for {
		text += cacheBenchText
		ids, err := eng.Tokenize(text, true)
		if err != nil {
			b.Fatal(err)
		}
		if len(ids) >= cacheBenchPrefix {
			return ids[:cacheBenchPrefix]
		}
	}
}

func cacheBenchTokens(b *testing.B, eng *engine.Engine, text string) []int {
	ids, err := eng.Tokenize(text, false)
	if err != nil {
		b.Fatal(err)
	}
	return ids
}

// cacheBenchTurn generates a greedy reply to prompt and returns the time to
// its first token, the reply and the prompt tokens reused from the cache.
func cacheBenchTurn(b *testing.B, eng *engine.Engine, prompt []int, noCache bool) (time.Duration, []int, int) {
	sp := engine.DefaultSampling()
	sp.Temperature, sp.Seed = 0, 1
	var reply []int
	st, err := eng.Generate(context.Background(), engine.Request{Prompt: prompt, MaxTokens: cacheBenchReply, Sampling: sp, IgnoreEOS: true, NoPromptCache: noCache},
		func(t engine.Token) { reply = append(reply, t.ID) })
	if err != nil {
		b.Fatal(err)
	}
	return st.PromptTime, reply, st.CachedTokens
}

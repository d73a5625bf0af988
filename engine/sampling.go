package engine

import (
	"math"

	"github.com/ollama/ollama/llama"
)

// RandomSeed as Sampling.Seed asks for a different random seed every time.
const RandomSeed = math.MaxUint32

// Sampling holds how the next token is chosen for one sequence.
type Sampling struct {
	Temperature   float32 // 0 picks the most likely token
	TopK          int     // keep the K most likely tokens; 0 = off
	TopP          float32 // nucleus sampling; 1 = off
	MinP          float32 // drop tokens below MinP × the top probability; 0 = off
	RepeatPenalty float32 // penalise recent tokens; 1 = off
	RepeatLastN   int     // how many recent tokens the penalty looks at
	Presence      float32 // OpenAI presence penalty; 0 = off
	Frequency     float32 // OpenAI frequency penalty; 0 = off
	Seed          uint32  // RandomSeed for a random one
}

// DefaultSampling is what a request gets for fields it leaves out.
func DefaultSampling() Sampling {
	return Sampling{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1.0, RepeatLastN: 64, Seed: RandomSeed}
}

func (s Sampling) params() llama.SamplingParams {
	return llama.SamplingParams{
		Temp:           s.Temperature,
		TopK:           s.TopK,
		TopP:           s.TopP,
		MinP:           s.MinP,
		TypicalP:       1,
		PenaltyRepeat:  s.RepeatPenalty,
		RepeatLastN:    s.RepeatLastN,
		PenaltyPresent: s.Presence,
		PenaltyFreq:    s.Frequency,
		Seed:           s.Seed,
	}
}

package worker

import (
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/engine"
)

// DefaultMaxTokens is what a request that sets no max_tokens gets (less when
// the prompt leaves less room in the slot's context).
const DefaultMaxTokens = 256

// Limits of the request fields.
const (
	maxStops   = 4
	maxStopLen = 256
	maxJobID   = 64
	maxSeed    = math.MaxUint32 - 1

	// GreedyBelow is the smallest temperature that samples: llama.cpp divides
	// the logits by the temperature, and a smaller (or subnormal) one
	// overflows them to infinity, which aborts its sampler. Temperatures
	// below it pick the most likely token, as 0 does.
	GreedyBelow = 1e-5
	// MinRepeatPenalty is the smallest repeat_penalty: llama.cpp divides
	// positive logits by it, so a tinier one overflows them the same way.
	MinRepeatPenalty = 1e-3

	minNormalFloat32 = 0x1p-126 // smaller magnitudes are subnormal in float32
)

// genParams are the generation fields every endpoint shares.
type genParams struct {
	MaxTokens        *int
	Temperature      *float64
	TopP             *float64
	TopK             *int
	MinP             *float64
	RepeatPenalty    *float64
	PresencePenalty  *float64
	FrequencyPenalty *float64
	Seed             *int64
	Stop             []string
	IgnoreEOS        bool
	NoPromptCache    bool
	Grammar          string // GBNF from response_format; "" = free text
}

// limits are what validation needs to know about the loaded model.
type limits struct {
	CtxSize int // tokens per slot
	Vocab   int // vocabulary size
}

func limitsOf(eng *engine.Engine) limits {
	info := eng.Info()
	return limits{CtxSize: info.CtxSize, Vocab: info.Vocab}
}

// fieldError is a 400 that names the offending field.
func fieldError(field, format string, args ...any) *api.Error {
	return api.Errorf(http.StatusBadRequest, "INVALID_REQUEST", field+": "+format, args...).WithDetails(map[string]any{"field": field})
}

// floatRule is the range one float field must lie in.
type floatRule struct {
	name   string
	v      *float64
	lo, hi float64
	hint   string // what the range means, for the message
}

func (c floatRule) check() error {
	if c.v == nil {
		return nil
	}
	v := *c.v
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fieldError(c.name, "must be a finite number, got %g", v)
	}
	if v < c.lo || v > c.hi {
		return fieldError(c.name, "must be in [%g, %g]%s, got %g", c.lo, c.hi, c.hint, v)
	}
	return nil
}

// validate checks every field against lim and against what llama.cpp's
// samplers accept; it needs no model.
func (p genParams) validate(lim limits) error {
	if p.MaxTokens != nil && (*p.MaxTokens < 1 || *p.MaxTokens > lim.CtxSize) {
		return fieldError("max_tokens", "must be between 1 and %d (the context size per slot), got %d", lim.CtxSize, *p.MaxTokens)
	}
	for _, c := range []floatRule{
		{"temperature", p.Temperature, 0, 2, fmt.Sprintf(" (0 or below %g = greedy)", GreedyBelow)},
		{"top_p", p.TopP, 0, 1, " (1 = off)"},
		{"min_p", p.MinP, 0, 1, " (0 = off)"},
		{"repeat_penalty", p.RepeatPenalty, MinRepeatPenalty, 10, " (1 = off)"},
		{"presence_penalty", p.PresencePenalty, -2, 2, " (0 = off)"},
		{"frequency_penalty", p.FrequencyPenalty, -2, 2, " (0 = off)"},
	} {
		if err := c.check(); err != nil {
			return err
		}
	}
	if p.TopK != nil && (*p.TopK < 0 || *p.TopK > lim.Vocab) {
		return fieldError("top_k", "must be between 0 (off) and %d (the vocabulary size), got %d", lim.Vocab, *p.TopK)
	}
	if p.Seed != nil && (*p.Seed < 0 || *p.Seed > maxSeed) {
		return fieldError("seed", "must be between 0 and %d, got %d", int64(maxSeed), *p.Seed)
	}
	if len(p.Stop) > maxStops {
		return fieldError("stop", "at most %d stop strings, got %d", maxStops, len(p.Stop))
	}
	for _, st := range p.Stop {
		if st == "" || len(st) > maxStopLen {
			return fieldError("stop", "each stop string must have 1 to %d bytes", maxStopLen)
		}
	}
	return nil
}

// sampling is the engine's sampling for validated params. Values that
// float32 cannot tell from zero, and temperatures below GreedyBelow, become
// exact zeros so that llama.cpp takes its greedy or "off" paths.
func (p genParams) sampling() engine.Sampling {
	sp := engine.DefaultSampling()
	set := func(dst *float32, v *float64) {
		if v == nil {
			return
		}
		f := float32(*v)
		if math.Abs(float64(f)) < minNormalFloat32 {
			f = 0
		}
		*dst = f
	}
	set(&sp.Temperature, p.Temperature)
	if sp.Temperature < GreedyBelow {
		sp.Temperature = 0
	}
	set(&sp.TopP, p.TopP)
	set(&sp.MinP, p.MinP)
	set(&sp.RepeatPenalty, p.RepeatPenalty)
	set(&sp.Presence, p.PresencePenalty)
	set(&sp.Frequency, p.FrequencyPenalty)
	if p.TopK != nil {
		sp.TopK = *p.TopK
	}
	if p.Seed != nil {
		sp.Seed = uint32(*p.Seed)
	}
	return sp
}

// checkPrompt refuses prompts that cannot be tokenized.
func checkPrompt(field, prompt string) error {
	if prompt == "" {
		return fieldError(field, "must not be empty")
	}
	if strings.IndexByte(prompt, 0) >= 0 {
		return fieldError(field, "must not contain NUL characters")
	}
	return nil
}

// request tokenizes a validated prompt into an engine request, checking that
// prompt and max_tokens fit one slot's context.
func (s *Server) request(eng *engine.Engine, prompt string, p genParams, stops []string) (engine.Request, error) {
	ctxSize := eng.Info().CtxSize
	tokens, err := eng.Tokenize(prompt, true)
	if err != nil {
		return engine.Request{}, fieldError("prompt", "cannot be tokenized: %v", err)
	}
	if len(tokens) >= ctxSize {
		return engine.Request{}, fieldError("prompt", "is %d tokens long; a slot holds %d tokens in all, so shorten it or raise ctx_size", len(tokens), ctxSize)
	}
	maxTokens := min(DefaultMaxTokens, ctxSize-len(tokens))
	if p.MaxTokens != nil {
		maxTokens = *p.MaxTokens
		if len(tokens)+maxTokens > ctxSize {
			return engine.Request{}, fieldError("max_tokens", "%d + the prompt's %d tokens exceed the context of %d tokens per slot; lower max_tokens to at most %d",
				maxTokens, len(tokens), ctxSize, ctxSize-len(tokens))
		}
	}
	return engine.Request{
		Prompt:        tokens,
		MaxTokens:     maxTokens,
		Sampling:      p.sampling(),
		Stop:          append(append([]string(nil), p.Stop...), stops...),
		IgnoreEOS:     p.IgnoreEOS,
		NoPromptCache: p.NoPromptCache,
		Grammar:       p.Grammar,
	}, nil
}

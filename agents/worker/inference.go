package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/rbee-dev/rbee/agents/worker/workerapi"
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
}

// fieldError is a 400 that names the offending field.
func fieldError(field, format string, args ...any) *api.Error {
	return api.Errorf(http.StatusBadRequest, "INVALID_REQUEST", field+": "+format, args...).WithDetails(map[string]any{"field": field})
}

func checkRange(field string, v *float64, lo, hi float64, loOpen bool) error {
	if v == nil {
		return nil
	}
	bad := math.IsNaN(*v) || *v > hi || *v < lo || (loOpen && *v == lo)
	if bad {
		open := "["
		if loOpen {
			open = "("
		}
		return fieldError(field, "must be in %s%g, %g], got %g", open, lo, hi, *v)
	}
	return nil
}

// request validates p and tokenizes prompt into an engine request.
func (s *Server) request(eng *engine.Engine, prompt string, p genParams, stops []string) (engine.Request, error) {
	var req engine.Request
	if prompt == "" {
		return req, fieldError("prompt", "must not be empty")
	}
	if strings.IndexByte(prompt, 0) >= 0 {
		return req, fieldError("prompt", "must not contain NUL characters")
	}
	ctxSize := eng.Info().CtxSize
	if p.MaxTokens != nil && (*p.MaxTokens < 1 || *p.MaxTokens > ctxSize) {
		return req, fieldError("max_tokens", "must be between 1 and %d (the context size per slot), got %d", ctxSize, *p.MaxTokens)
	}
	for _, c := range []struct {
		name   string
		v      *float64
		lo, hi float64
		loOpen bool
	}{
		{"temperature", p.Temperature, 0, 2, false},
		{"top_p", p.TopP, 0, 1, false},
		{"min_p", p.MinP, 0, 1, false},
		{"repeat_penalty", p.RepeatPenalty, 0, 10, true},
		{"presence_penalty", p.PresencePenalty, -2, 2, false},
		{"frequency_penalty", p.FrequencyPenalty, -2, 2, false},
	} {
		if err := checkRange(c.name, c.v, c.lo, c.hi, c.loOpen); err != nil {
			return req, err
		}
	}
	vocab := eng.Info().Vocab
	if p.TopK != nil && (*p.TopK < 0 || *p.TopK > vocab) {
		return req, fieldError("top_k", "must be between 0 (off) and %d (the vocabulary size), got %d", vocab, *p.TopK)
	}
	if p.Seed != nil && (*p.Seed < 0 || *p.Seed > maxSeed) {
		return req, fieldError("seed", "must be between 0 and %d, got %d", int64(maxSeed), *p.Seed)
	}
	if len(p.Stop) > maxStops {
		return req, fieldError("stop", "at most %d stop strings, got %d", maxStops, len(p.Stop))
	}
	for _, st := range p.Stop {
		if st == "" || len(st) > maxStopLen {
			return req, fieldError("stop", "each stop string must have 1 to %d bytes", maxStopLen)
		}
	}

	tokens, err := eng.Tokenize(prompt, true)
	if err != nil {
		return req, fieldError("prompt", "cannot be tokenized: %v", err)
	}
	if len(tokens) >= ctxSize {
		return req, fieldError("prompt", "is %d tokens long; a slot holds %d tokens in all, so shorten it or raise ctx_size", len(tokens), ctxSize)
	}
	maxTokens := min(DefaultMaxTokens, ctxSize-len(tokens))
	if p.MaxTokens != nil {
		maxTokens = *p.MaxTokens
		if len(tokens)+maxTokens > ctxSize {
			return req, fieldError("max_tokens", "%d + the prompt's %d tokens exceed the context of %d tokens per slot; lower max_tokens to at most %d",
				maxTokens, len(tokens), ctxSize, ctxSize-len(tokens))
		}
	}
	sp := engine.DefaultSampling()
	setF := func(dst *float32, v *float64) {
		if v != nil {
			*dst = float32(*v)
		}
	}
	setF(&sp.Temperature, p.Temperature)
	setF(&sp.TopP, p.TopP)
	setF(&sp.MinP, p.MinP)
	setF(&sp.RepeatPenalty, p.RepeatPenalty)
	setF(&sp.Presence, p.PresencePenalty)
	setF(&sp.Frequency, p.FrequencyPenalty)
	if p.TopK != nil {
		sp.TopK = *p.TopK
	}
	if p.Seed != nil {
		sp.Seed = uint32(*p.Seed)
	}
	req = engine.Request{Prompt: tokens, MaxTokens: maxTokens, Sampling: sp, Stop: append(append([]string(nil), p.Stop...), stops...), IgnoreEOS: p.IgnoreEOS}
	return req, nil
}

var (
	unknownFieldRe = regexp.MustCompile(`unknown field "([^"]+)"`)
	typeFieldRe    = regexp.MustCompile(`Go struct field (\S+) of type`)
	jobIDRe        = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

// decodeBody reads a JSON body with api.DecodeJSON and names the field in
// the error details when the decoder did.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	err := api.DecodeJSON(w, r, v)
	var e *api.Error
	if err == nil || !errors.As(err, &e) || e.Status != http.StatusBadRequest {
		return err
	}
	if m := unknownFieldRe.FindStringSubmatch(e.Message); m != nil {
		e.Message = fmt.Sprintf("unknown field %q in the request body", m[1])
		return e.WithDetails(map[string]any{"field": m[1]})
	}
	if m := typeFieldRe.FindStringSubmatch(e.Message); m != nil {
		_, field, _ := strings.Cut(m[1], ".") // drop the Go type name
		return e.WithDetails(map[string]any{"field": field})
	}
	return e
}

func newJobID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "job-" + hex.EncodeToString(b[:])
}

// job is one admitted request: its stream and how to end it.
type job struct {
	id     string
	stream *engine.Stream
	cancel context.CancelFunc
	start  time.Time
}

// startJob registers id and admits req; the job ends when the client goes
// away, DELETE /v1/inference/{id} arrives or the worker stops.
func (s *Server) startJob(r *http.Request, eng *engine.Engine, id string, req engine.Request) (*job, error) {
	ctx, cancel := context.WithCancel(r.Context())
	if err := s.addJob(id, cancel); err != nil {
		cancel()
		return nil, err
	}
	st, err := eng.Start(ctx, req)
	if err != nil {
		s.removeJob(id)
		cancel()
		switch {
		case errors.Is(err, engine.ErrBusy):
			total, _ := eng.Slots()
			return nil, api.Errorf(http.StatusServiceUnavailable, "ALL_SLOTS_BUSY", "all %d slots of this worker are busy; retry shortly or use another worker", total)
		case errors.Is(err, engine.ErrClosed):
			return nil, errShuttingDown()
		case errors.Is(err, engine.ErrRequest):
			return nil, fieldError("max_tokens", "%v", err)
		}
		return nil, err
	}
	return &job{id: id, stream: st, cancel: cancel, start: time.Now()}, nil
}

// end unregisters the job and records its metrics.
func (s *Server) end(endpoint string, j *job) engine.Stats {
	j.cancel()
	s.removeJob(j.id)
	st := j.stream.Stats()
	s.metrics.observe(endpoint, st)
	s.log.Info("job finished", "endpoint", endpoint, "job_id", j.id, "slot", j.stream.Slot(),
		"prompt_tokens", st.PromptTokens, "tokens", st.Tokens, "stop_reason", st.StopReason,
		"prompt_ms", st.PromptTime.Milliseconds(), "decode_ms", st.DecodeTime.Milliseconds(),
		"tokens_per_second", math.Round(st.TokensPerSecond()*10)/10)
	return st
}

// writeError answers with the error envelope and counts the request.
func (s *Server) writeError(w http.ResponseWriter, endpoint string, err error) {
	var e *api.Error
	if errors.As(err, &e) {
		if e.Status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		s.metrics.requests.WithLabelValues(endpoint, e.Code).Inc()
	} else {
		s.metrics.requests.WithLabelValues(endpoint, "INTERNAL").Inc()
	}
	api.WriteError(w, err)
}

// handleInference is POST /v1/inference: native SSE.
func (s *Server) handleInference(w http.ResponseWriter, r *http.Request) {
	const endpoint = "inference"
	eng, err := s.engine()
	if err != nil {
		s.writeError(w, endpoint, err)
		return
	}
	var in workerapi.InferenceRequest
	if err := decodeBody(w, r, &in); err != nil {
		s.writeError(w, endpoint, err)
		return
	}
	id := in.JobID
	if id == "" {
		id = newJobID()
	} else if !jobIDRe.MatchString(id) {
		s.writeError(w, endpoint, fieldError("job_id", "must be 1 to %d characters of A-Z a-z 0-9 . _ -", maxJobID))
		return
	}
	req, err := s.request(eng, in.Prompt, genParams{
		MaxTokens: in.MaxTokens, Temperature: in.Temperature, TopP: in.TopP, TopK: in.TopK,
		MinP: in.MinP, RepeatPenalty: in.RepeatPenalty, Seed: in.Seed, Stop: in.Stop, IgnoreEOS: in.IgnoreEOS,
	}, nil)
	if err != nil {
		s.writeError(w, endpoint, err)
		return
	}
	j, err := s.startJob(r, eng, id, req)
	if err != nil {
		s.writeError(w, endpoint, err)
		return
	}
	w.Header().Set(workerapi.HeaderJobID, id)
	out := newSSE(w)
	out.started(id, j.stream.Slot())
	for tok := range j.stream.C {
		if !out.token(tok.Text, tok.Index) {
			j.cancel() // the client is gone: free the slot now
		}
	}
	st := s.end(endpoint, j)
	if err := j.stream.Err(); err != nil && !errors.Is(err, engine.ErrClosed) {
		out.json(workerapi.Event{Type: workerapi.EventError, Code: "DECODE_FAILED", Message: err.Error()})
	}
	out.json(endEvent{
		Type:            workerapi.EventEnd,
		JobID:           id,
		TokensOut:       st.Tokens,
		DecodeTimeMS:    st.DecodeTime.Milliseconds(),
		PromptTokens:    st.PromptTokens,
		PromptTimeMS:    st.PromptTime.Milliseconds(),
		TokensPerSecond: math.Round(st.TokensPerSecond()*100) / 100,
		StopReason:      string(st.StopReason),
	})
	out.done()
}

// endEvent is the last event of a native stream; unlike workerapi.Event it
// keeps zero values.
type endEvent struct {
	Type            string  `json:"type"`
	JobID           string  `json:"job_id"`
	TokensOut       int     `json:"tokens_out"`
	DecodeTimeMS    int64   `json:"decode_time_ms"`
	PromptTokens    int     `json:"prompt_tokens"`
	PromptTimeMS    int64   `json:"prompt_time_ms"`
	TokensPerSecond float64 `json:"tokens_per_second"`
	StopReason      string  `json:"stop_reason"`
}

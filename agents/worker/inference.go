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
			return nil, api.Errorf(http.StatusServiceUnavailable, workerapi.CodeBusy, "all %d slots of this worker are busy; retry shortly or use another worker", total)
		case errors.Is(err, engine.ErrClosed):
			return nil, errShuttingDown()
		case errors.Is(err, engine.ErrRequest) && req.Grammar != "":
			return nil, fieldError("response_format", "%v", err)
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
	s.metrics.observe(endpoint, st, time.Since(j.start))
	s.log.Info("job finished", "endpoint", endpoint, "job_id", j.id, "slot", j.stream.Slot(),
		"prompt_tokens", st.PromptTokens, "tokens", st.Tokens, "stop_reason", st.StopReason,
		"prompt_ms", st.PromptTime.Milliseconds(), "decode_ms", st.DecodeTime.Milliseconds(),
		"tokens_per_second", math.Round(st.TokensPerSecond()*10)/10)
	return st
}

// writeError answers with the error envelope and counts the request. The
// OpenAI endpoints add OpenAI's "type" and "param" to it.
func (s *Server) writeError(w http.ResponseWriter, endpoint string, err error) {
	var e *api.Error
	if !errors.As(err, &e) {
		e = &api.Error{Status: http.StatusInternalServerError, Code: "INTERNAL", Message: err.Error()}
	}
	if e.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	s.metrics.requests.WithLabelValues(endpoint, e.Code).Inc()
	if endpoint == endpointInference {
		api.WriteError(w, e)
		return
	}
	writeOpenAIError(w, e)
}

// parseInference decodes and validates a native request body; it needs no
// model, only its limits.
func parseInference(w http.ResponseWriter, r *http.Request, lim limits) (workerapi.InferenceRequest, genParams, error) {
	var in workerapi.InferenceRequest
	if err := decodeBody(w, r, &in); err != nil {
		return in, genParams{}, err
	}
	if in.JobID != "" && !jobIDRe.MatchString(in.JobID) {
		return in, genParams{}, fieldError("job_id", "must be 1 to %d characters of A-Z a-z 0-9 . _ -", maxJobID)
	}
	if err := checkPrompt("prompt", in.Prompt); err != nil {
		return in, genParams{}, err
	}
	p := genParams{
		MaxTokens: in.MaxTokens, Temperature: in.Temperature, TopP: in.TopP, TopK: in.TopK,
		MinP: in.MinP, RepeatPenalty: in.RepeatPenalty, Seed: in.Seed, Stop: in.Stop, IgnoreEOS: in.IgnoreEOS,
		NoPromptCache: in.CachePrompt != nil && !*in.CachePrompt,
	}
	return in, p, p.validate(lim)
}

// handleInference is POST /v1/inference: native SSE.
func (s *Server) handleInference(w http.ResponseWriter, r *http.Request) {
	const endpoint = endpointInference
	eng, err := s.engine()
	if err != nil {
		s.writeError(w, endpoint, err)
		return
	}
	in, p, err := parseInference(w, r, limitsOf(eng))
	if err != nil {
		s.writeError(w, endpoint, err)
		return
	}
	id := in.JobID
	if id == "" {
		id = newJobID()
	}
	req, err := s.request(eng, in.Prompt, p, nil)
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
		CachedTokens:    st.CachedTokens,
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
	CachedTokens    int     `json:"cached_tokens"`
	TokensPerSecond float64 `json:"tokens_per_second"`
	StopReason      string  `json:"stop_reason"`
}

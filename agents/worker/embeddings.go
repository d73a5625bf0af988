package worker

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/engine"
)

// maxEmbeddingInputs bounds one POST /v1/embeddings batch.
const maxEmbeddingInputs = 256

// embeddingRequest is the body of POST /v1/embeddings (OpenAI's shape).
type embeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"` // float (default) or base64
	User           string          `json:"user"`            // accepted and ignored
}

// embeddingInput is one input: text to tokenize or tokens as given.
type embeddingInput struct {
	text   string
	tokens []int
}

// parseEmbeddings decodes and validates an embeddings body; it needs no
// model, only its limits.
func parseEmbeddings(w http.ResponseWriter, r *http.Request, lim limits) (embeddingRequest, []embeddingInput, error) {
	var in embeddingRequest
	if err := decodeBody(w, r, &in); err != nil {
		return in, nil, err
	}
	switch in.EncodingFormat {
	case "", "float", "base64":
	default:
		return in, nil, fieldError("encoding_format", `must be "float" or "base64", got %q`, in.EncodingFormat)
	}
	inputs, err := embeddingInputs(in.Input)
	if err != nil {
		return in, nil, err
	}
	if len(inputs) == 0 || len(inputs) > maxEmbeddingInputs {
		return in, nil, fieldError("input", "must hold 1 to %d inputs, got %d", maxEmbeddingInputs, len(inputs))
	}
	for i, x := range inputs {
		field := "input[" + strconv.Itoa(i) + "]"
		if x.tokens == nil {
			if err := checkPrompt(field, x.text); err != nil {
				return in, nil, err
			}
			continue
		}
		if len(x.tokens) == 0 || len(x.tokens) > lim.CtxSize {
			return in, nil, fieldError(field, "must hold 1 to %d tokens (the context size per slot), got %d", lim.CtxSize, len(x.tokens))
		}
		for _, t := range x.tokens {
			if t < 0 || t >= lim.Vocab {
				return in, nil, fieldError(field, "token %d is outside the vocabulary of %d tokens", t, lim.Vocab)
			}
		}
	}
	return in, inputs, nil
}

// embeddingInputs accepts a string, an array of strings, an array of token
// ids or an array of such arrays.
func embeddingInputs(raw json.RawMessage) ([]embeddingInput, error) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []embeddingInput{{text: one}}, nil
	}
	var texts []string
	if json.Unmarshal(raw, &texts) == nil {
		out := make([]embeddingInput, len(texts))
		for i, t := range texts {
			out[i] = embeddingInput{text: t}
		}
		return out, nil
	}
	var tokens []int
	if json.Unmarshal(raw, &tokens) == nil {
		return []embeddingInput{{tokens: append([]int{}, tokens...)}}, nil
	}
	var lists [][]int
	if json.Unmarshal(raw, &lists) == nil {
		out := make([]embeddingInput, len(lists))
		for i, l := range lists {
			out[i] = embeddingInput{tokens: append([]int{}, l...)}
		}
		return out, nil
	}
	return nil, fieldError("input", "must be a string, an array of strings, an array of token ids or an array of token-id arrays")
}

// errEmbeddingsOff answers embeddings on a worker started without them.
func errEmbeddingsOff() *api.Error {
	return api.Errorf(http.StatusBadRequest, "EMBEDDINGS_DISABLED",
		"this worker serves completions only; start it with `rbee worker --embeddings` (pool attribute embeddings = true) to serve POST /v1/embeddings")
}

// handleEmbeddings is POST /v1/embeddings.
func (s *Server) handleEmbeddings(w http.ResponseWriter, r *http.Request) {
	const endpoint = "embeddings"
	if !s.cfg.Embeddings {
		s.writeError(w, endpoint, errEmbeddingsOff())
		return
	}
	eng, err := s.engine()
	if err != nil {
		s.writeError(w, endpoint, err)
		return
	}
	in, inputs, err := parseEmbeddings(w, r, limitsOf(eng))
	if err != nil {
		s.writeError(w, endpoint, err)
		return
	}
	batch, total, err := tokenizeInputs(eng, inputs)
	if err != nil {
		s.writeError(w, endpoint, err)
		return
	}
	vecs, err := s.embed(r, eng, batch)
	if err != nil {
		s.writeError(w, endpoint, err)
		return
	}
	s.metrics.requests.WithLabelValues(endpoint, "ok").Inc()
	s.metrics.promptTokens.Add(float64(total))
	model := in.Model
	if model == "" {
		model = modelName(s.cfg.ModelPath)
	}
	data := make([]map[string]any, len(vecs))
	for i, v := range vecs {
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": encodeEmbedding(v, in.EncodingFormat)}
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{
		"object": "list", "data": data, "model": model,
		"usage": map[string]int{"prompt_tokens": total, "total_tokens": total},
	})
}

// tokenizeInputs turns inputs into token lists that fit one slot.
func tokenizeInputs(eng *engine.Engine, inputs []embeddingInput) ([][]int, int, error) {
	ctxSize := eng.Info().CtxSize
	batch := make([][]int, len(inputs))
	total := 0
	for i, x := range inputs {
		toks := x.tokens
		if toks == nil {
			var err error
			if toks, err = eng.Tokenize(x.text, true); err != nil {
				return nil, 0, fieldError("input["+strconv.Itoa(i)+"]", "cannot be tokenized: %v", err)
			}
		}
		if len(toks) == 0 || len(toks) > ctxSize {
			return nil, 0, fieldError("input["+strconv.Itoa(i)+"]", "is %d tokens long; one input may hold 1 to %d tokens (ctx_size)", len(toks), ctxSize)
		}
		batch[i] = toks
		total += len(toks)
	}
	return batch, total, nil
}

// embed runs the batch through the engine while the request lasts; it is
// counted in flight, so a drain waits for it and a shutdown cancels it.
func (s *Server) embed(r *http.Request, eng *engine.Engine, batch [][]int) ([][]float32, error) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	id := "embd-" + strings.TrimPrefix(newJobID(), "job-")
	if err := s.addJob(id, cancel); err != nil {
		return nil, err
	}
	defer s.removeJob(id)
	vecs, err := eng.Embed(ctx, batch)
	switch {
	case errors.Is(err, engine.ErrRequest):
		return nil, fieldError("input", "%v", err)
	case errors.Is(err, engine.ErrClosed):
		return nil, errShuttingDown()
	case err != nil:
		return nil, api.Errorf(http.StatusInternalServerError, "EMBEDDING_FAILED", "embedding failed: %v", err)
	}
	for i, v := range vecs {
		for _, f := range v {
			if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
				return nil, api.Errorf(http.StatusInternalServerError, "EMBEDDING_FAILED", "the model gave a non-finite value in embedding %d", i)
			}
		}
	}
	return vecs, nil
}

// encodeEmbedding is a vector as JSON numbers, or for "base64" the base64 of
// its little-endian float32 bytes, as OpenAI sends it.
func encodeEmbedding(v []float32, format string) any {
	if format != "base64" {
		return v
	}
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return base64.StdEncoding.EncodeToString(b)
}

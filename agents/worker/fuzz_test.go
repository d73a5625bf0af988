package worker

import (
	"errors"
	"net/http"
	"testing"

	"github.com/rbee-dev/rbee/api"
)

// seedBodies are the request bodies every decoding fuzz target starts from:
// ordinary requests, and the values that once aborted the worker inside
// llama.cpp's sampler (subnormal temperatures and penalties).
var seedBodies = []string{
	`{"prompt":"hi","max_tokens":5,"temperature":1e-39}`,
	`{"prompt":"hi","max_tokens":5,"temperature":1e-44}`,
	`{"prompt":"hi","max_tokens":5,"temperature":2e-38}`,
	`{"prompt":"hi","max_tokens":5,"repeat_penalty":1e-40}`,
	`{"prompt":"hi","top_p":1e-40,"min_p":1e-40,"presence_penalty":1e-40,"frequency_penalty":-1e-40}`,
	`{"messages":[{"role":"user","content":"hi"}],"max_tokens":5,"repeat_penalty":1e-40}`,
	`{"messages":[{"role":"user","content":"hi"}],"max_tokens":5,"temperature":1e-39}`,
	`{"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}}}`,
	`{"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object"},"cache_prompt":false,"user":"u","store":false,"metadata":{"a":"b"}}`,
	`{"prompt":["a"],"stop":"x","n":1,"stream":true,"stream_options":{"include_usage":true}}`,
	`{"prompt":"hi","seed":4294967294,"top_k":40,"max_tokens":511,"job_id":"a.b-c_d"}`,
	`{"prompt":"hi","temperature":1e999}`,
	`{"prompt":"hi","max_tokens":1e20}`,
	`{"input":["a","b"],"encoding_format":"base64"}`,
	`{"input":[[1,2,3],[4]]}`,
	`{"input":[-1]}`,
	`{}`, `[]`, `null`, ``, `{"prompt":"\u0000"}`,
}

// fuzzParse runs path's real decoder and validator on body and checks the
// contract: an error is a 400 or 413 *api.Error (a validation error names
// its field), and accepted parameters are safe for llama.cpp's samplers.
func fuzzParse(t *testing.T, path string, body []byte) {
	p, err := parseBody(path, string(body))
	if err != nil {
		var e *api.Error
		if !errors.As(err, &e) {
			t.Fatalf("%s %q: error %v is not an *api.Error", path, body, err)
		}
		if e.Status != http.StatusBadRequest && e.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("%s %q: status %d, want 400 or 413 (%v)", path, body, e.Status, e)
		}
		if e.Code == "INVALID_REQUEST" && errField(err) == "" {
			t.Fatalf("%s %q: validation error %v names no field", path, body, e)
		}
		return
	}
	if msg := unsafeSampling(p.sampling()); msg != "" {
		t.Fatalf("%s %q: accepted, but %s", path, body, msg)
	}
	if p.MaxTokens != nil && (*p.MaxTokens < 1 || *p.MaxTokens > testLimits.CtxSize) {
		t.Fatalf("%s %q: accepted max_tokens %d", path, body, *p.MaxTokens)
	}
	if p.TopK != nil && (*p.TopK < 0 || *p.TopK > testLimits.Vocab) {
		t.Fatalf("%s %q: accepted top_k %d", path, body, *p.TopK)
	}
}

func fuzzEndpoint(f *testing.F, path string) {
	for _, b := range seedBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) { fuzzParse(t, path, body) })
}

func FuzzInferenceBody(f *testing.F)  { fuzzEndpoint(f, "/v1/inference") }
func FuzzCompletionBody(f *testing.F) { fuzzEndpoint(f, "/v1/completions") }
func FuzzChatBody(f *testing.F)       { fuzzEndpoint(f, "/v1/chat/completions") }
func FuzzEmbeddingsBody(f *testing.F) { fuzzEndpoint(f, "/v1/embeddings") }

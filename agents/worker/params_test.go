package worker

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/engine"
)

// testLimits are a small model's limits; the parsers need no more.
var testLimits = limits{CtxSize: 512, Vocab: 32000}

// parseBody runs one endpoint's real decoder and validator on body.
func parseBody(path, body string) (genParams, error) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	switch path {
	case "/v1/inference":
		_, p, err := parseInference(w, r, testLimits)
		return p, err
	case "/v1/completions":
		_, _, p, err := parseCompletion(w, r, testLimits)
		return p, err
	case "/v1/chat/completions":
		_, _, p, err := parseChat(w, r, testLimits)
		return p, err
	case "/v1/embeddings":
		_, _, err := parseEmbeddings(w, r, testLimits)
		return genParams{}, err
	}
	panic("no parser for " + path)
}

func TestFloatFieldsAreCheckedAndTinyValuesAreSafe(t *testing.T) {
	for _, tc := range []struct {
		path, body string
		field      string  // the field a 400 names; "" = accepted
		temp       float32 // the sampling temperature when accepted
	}{
		{"/v1/completions", `{"prompt":"hi","max_tokens":5,"temperature":1e-39}`, "", 0},
		{"/v1/completions", `{"prompt":"hi","temperature":1e-44}`, "", 0},
		{"/v1/completions", `{"prompt":"hi","temperature":2e-38}`, "", 0},
		{"/v1/completions", `{"prompt":"hi","temperature":5e-324}`, "", 0},
		{"/v1/inference", `{"prompt":"hi","temperature":0.000009}`, "", 0},
		{"/v1/inference", `{"prompt":"hi","temperature":0.5}`, "", 0.5},
		{"/v1/inference", `{"prompt":"hi","temperature":2}`, "", 2},
		{"/v1/inference", `{"prompt":"hi","temperature":-1e-39}`, "temperature", 0},
		{"/v1/inference", `{"prompt":"hi","temperature":2.0000001}`, "temperature", 0},
		{"/v1/inference", `{"prompt":"hi","temperature":1e999}`, "temperature", 0},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"repeat_penalty":1e-40}`, "repeat_penalty", 0},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"repeat_penalty":0.0009}`, "repeat_penalty", 0},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"repeat_penalty":0.001,"temperature":0.7}`, "", 0.7},
		{"/v1/inference", `{"prompt":"hi","top_p":1e-40,"temperature":1}`, "", 1},
		{"/v1/inference", `{"prompt":"hi","min_p":1e-40,"temperature":1}`, "", 1},
		{"/v1/completions", `{"prompt":"hi","presence_penalty":-1e-40,"frequency_penalty":1e-45,"temperature":1}`, "", 1},
		{"/v1/completions", `{"prompt":"hi","presence_penalty":2.5}`, "presence_penalty", 0},
		{"/v1/completions", `{"prompt":"hi","frequency_penalty":-3}`, "frequency_penalty", 0},
	} {
		p, err := parseBody(tc.path, tc.body)
		if tc.field != "" {
			if f := errField(err); f != tc.field {
				t.Errorf("%s %s: error %v naming %q, want a 400 naming %q", tc.path, tc.body, err, f, tc.field)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %s: %v, want it accepted", tc.path, tc.body, err)
			continue
		}
		sp := p.sampling()
		if sp.Temperature != tc.temp {
			t.Errorf("%s %s: temperature %g, want %g", tc.path, tc.body, sp.Temperature, tc.temp)
		}
		if msg := unsafeSampling(sp); msg != "" {
			t.Errorf("%s %s: %s", tc.path, tc.body, msg)
		}
	}
}

// errField is the field a 400 *api.Error names, or "".
func errField(err error) string {
	var e *api.Error
	if !errors.As(err, &e) || e.Status != http.StatusBadRequest {
		return ""
	}
	f, _ := e.Details["field"].(string)
	return f
}

// unsafeSampling says what in sp llama.cpp's samplers cannot take: values
// that are not finite, subnormal, or outside the ranges that keep the logits
// finite. "" means sp is safe.
func unsafeSampling(sp engine.Sampling) string {
	for _, f := range []struct {
		name string
		v    float32
	}{
		{"temperature", sp.Temperature}, {"top_p", sp.TopP}, {"min_p", sp.MinP},
		{"repeat_penalty", sp.RepeatPenalty}, {"presence", sp.Presence}, {"frequency", sp.Frequency},
	} {
		v := float64(f.v)
		if math.IsNaN(v) || math.IsInf(v, 0) || (v != 0 && math.Abs(v) < minNormalFloat32) {
			return fmt.Sprintf("%s %g is not a finite normal float", f.name, v)
		}
	}
	if sp.Temperature != 0 && (sp.Temperature < GreedyBelow || sp.Temperature > 2) {
		return fmt.Sprintf("temperature %g overflows the logits", sp.Temperature)
	}
	if sp.RepeatPenalty < MinRepeatPenalty || sp.RepeatPenalty > 10 {
		return fmt.Sprintf("repeat_penalty %g overflows the logits", sp.RepeatPenalty)
	}
	return ""
}

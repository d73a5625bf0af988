package canary

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/state"
)

// worker is a real HTTP server speaking the worker's wire format
// (workerapi): GET /v1/ready and POST /v1/inference as an SSE stream. What
// it answers is set per test; it records the requests it got.
type worker struct {
	ready  workerapi.Ready
	infer  func(w http.ResponseWriter) // nil: the tokens below, then the end event
	tokens []string
	end    workerapi.Event
	token  string // bearer token it requires ("" none)

	mu   sync.Mutex
	reqs []workerapi.InferenceRequest
}

func (wk *worker) start(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ready", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, http.StatusOK, wk.ready)
	})
	mux.HandleFunc("POST /v1/inference", func(w http.ResponseWriter, r *http.Request) {
		var req workerapi.InferenceRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			api.WriteError(w, api.Errorf(http.StatusBadRequest, "BAD_REQUEST", "%v", err))
			return
		}
		wk.mu.Lock()
		wk.reqs = append(wk.reqs, req)
		wk.mu.Unlock()
		if wk.infer != nil {
			wk.infer(w)
			return
		}
		sse := api.NewSSEWriter(w)
		sse.JSON(workerapi.Event{Type: workerapi.EventStarted, JobID: req.JobID})
		for i, tok := range wk.tokens {
			sse.JSON(workerapi.Event{Type: workerapi.EventToken, T: tok, I: i})
		}
		end := wk.end
		end.Type, end.JobID = workerapi.EventEnd, req.JobID
		sse.JSON(end)
		sse.Done()
	})
	var h http.Handler = mux
	if wk.token != "" {
		h = api.RequireBearer(wk.token, mux)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func (wk *worker) requests() []workerapi.InferenceRequest {
	wk.mu.Lock()
	defer wk.mu.Unlock()
	return append([]workerapi.InferenceRequest(nil), wk.reqs...)
}

func idle() workerapi.Ready {
	return workerapi.Ready{Ready: true, State: workerapi.StateIdle, SlotsTotal: 2, SlotsFree: 2, ChatTemplate: "chatml",
		Runtime: workerapi.Runtime{Backend: "cpu", CPUVariant: "haswell"}}
}

func sixteen() []string {
	out := make([]string, Tokens)
	for i := range out {
		out[i] = " w" + string(rune('a'+i))
	}
	return out
}

func TestRun(t *testing.T) {
	busy := func(w http.ResponseWriter) {
		api.WriteError(w, api.Errorf(http.StatusServiceUnavailable, workerapi.CodeBusy, "all slots are busy"))
	}
	failing := func(w http.ResponseWriter) {
		api.WriteError(w, api.Errorf(http.StatusInternalServerError, "DECODE_FAILED", "llama_decode returned -1"))
	}
	midStream := func(w http.ResponseWriter) {
		sse := api.NewSSEWriter(w)
		sse.JSON(workerapi.Event{Type: workerapi.EventToken, T: "x"})
		sse.JSON(workerapi.Event{Type: workerapi.EventError, Code: "DECODE_FAILED", Message: "out of memory"})
		sse.Done()
	}
	notReady := idle()
	notReady.Ready, notReady.State = false, workerapi.StateLoading
	full := idle()
	full.State, full.SlotsFree = workerapi.StateBusy, 0
	cases := []struct {
		name     string
		ready    workerapi.Ready
		infer    func(w http.ResponseWriter)
		noSlot   bool   // ErrNoSlot, and no inference request
		skipped  bool   // ErrNoSlot after the request (a user's took the slot)
		errWords string // another error containing this
	}{
		{name: "measures a free slot", ready: idle()},
		{name: "a loading worker is skipped", ready: notReady, noSlot: true},
		{name: "a worker without a free slot is skipped", ready: full, noSlot: true},
		{name: "a slot taken first is a skip, not a failure", ready: idle(), infer: busy, skipped: true},
		{name: "an error answer is a failure", ready: idle(), infer: failing, errWords: "llama_decode returned -1"},
		{name: "an error event is a failure", ready: idle(), infer: midStream, errWords: "out of memory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wk := &worker{ready: tc.ready, infer: tc.infer, tokens: sixteen(), end: workerapi.Event{TokensOut: Tokens, DecodeTimeMS: 30, TokensPerSecond: 500}}
			srv := wk.start(t)
			m, err := Run(context.Background(), workerapi.NewClient(srv.URL, ""))
			reqs := wk.requests()
			switch {
			case tc.noSlot || tc.skipped:
				if !errors.Is(err, ErrNoSlot) {
					t.Fatalf("err = %v, want ErrNoSlot", err)
				}
				if tc.noSlot && len(reqs) != 0 {
					t.Errorf("the canary sent %d requests to a worker without a free slot", len(reqs))
				}
				return
			case tc.errWords != "":
				if err == nil || errors.Is(err, ErrNoSlot) || !strings.Contains(err.Error(), tc.errWords) {
					t.Fatalf("err = %v, want a failure naming %q", err, tc.errWords)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			want := Measure{DecodeTPS: 500, Tokens: Tokens, Fingerprint: Fingerprint(strings.Join(sixteen(), ""), "chatml"), Engine: "cpu/haswell"}
			got := m
			got.TTFT = 0
			if got != want || m.TTFT <= 0 {
				t.Errorf("measure = %+v, want %+v with a TTFT", m, want)
			}
			if len(reqs) != 1 {
				t.Fatalf("%d inference requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Prompt != Prompt || *r.MaxTokens != Tokens || *r.Temperature != 0 || !r.IgnoreEOS || *r.CachePrompt || !strings.HasPrefix(r.JobID, JobPrefix) {
				t.Errorf("the canary request is not greedy, fixed and uncached: %+v", r)
			}
		})
	}
}

func TestDecodeRate(t *testing.T) {
	cases := []struct {
		end  workerapi.Event
		want float64
	}{
		{workerapi.Event{TokensPerSecond: 42.5, TokensOut: 16, DecodeTimeMS: 1000}, 42.5}, // the worker's own figure wins
		{workerapi.Event{TokensOut: 16, DecodeTimeMS: 300}, 50},                           // 15 tokens after the first in 0.3 s
		{workerapi.Event{TokensOut: 1, DecodeTimeMS: 300}, 0},                             // no token after the first
		{workerapi.Event{TokensOut: 16}, 0},                                               // no decode time
	}
	for _, tc := range cases {
		if got := DecodeRate(tc.end); got != tc.want {
			t.Errorf("DecodeRate(%+v) = %v, want %v", tc.end, got, tc.want)
		}
	}
}

func TestFingerprint(t *testing.T) {
	base := Fingerprint("Once upon a time there", "chatml")
	cases := []struct {
		text, template string
		same           bool
	}{
		{"Once upon a time there", "chatml", true},
		{"Once upon a time, there", "chatml", false},
		{"Once upon a time there", "llama3", false},
		{"Once upon a time there\x00chatml", "", false}, // the separator keeps text and template apart
	}
	if len(base) != 16 || strings.Trim(base, "0123456789abcdef") != "" {
		t.Fatalf("fingerprint %q is not 16 hex digits", base)
	}
	for _, tc := range cases {
		if got := Fingerprint(tc.text, tc.template); (got == base) != tc.same {
			t.Errorf("Fingerprint(%q, %q) = %s, base %s: same = %v, want %v", tc.text, tc.template, got, base, got == base, tc.same)
		}
	}
}

func TestRecord(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	m := Measure{DecodeTPS: 12, TTFT: time.Second, Fingerprint: "new"}
	taken := state.Canary{Fingerprint: "old", Baseline: "old", BaselineModel: "sha-a", BaselineEngine: "bin cpu/haswell", Failed: "timeout"}
	cases := []struct {
		name          string
		prev          state.Canary
		model, engine string
		baseline      string
	}{
		{"the first fingerprint is the baseline", state.Canary{}, "sha-a", "bin cpu/haswell", "new"},
		{"on the same file and build the baseline stays", taken, "sha-a", "bin cpu/haswell", "old"},
		{"another model file takes a new baseline", taken, "sha-b", "bin cpu/haswell", "new"},
		{"another engine build takes a new baseline", taken, "sha-a", "bin2 cpu/haswell", "new"},
		{"another CPU library takes a new baseline", taken, "sha-a", "bin cpu/icelake", "new"},
	}
	for _, tc := range cases {
		c := Record(tc.prev, m, tc.model, tc.engine, now)
		if c.Baseline != tc.baseline || c.Fingerprint != "new" || c.DecodeTPS != 12 || c.TTFT != time.Second || !c.At.Equal(now) || c.Failed != "" {
			t.Errorf("%s: %+v, want baseline %q, the new figures and no failure", tc.name, c, tc.baseline)
		}
		if c.Baseline == "new" && (c.BaselineModel != tc.model || c.BaselineEngine != tc.engine) {
			t.Errorf("%s: the baseline is not tied to its model and engine: %+v", tc.name, c)
		}
	}
}

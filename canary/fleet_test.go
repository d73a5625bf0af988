package canary

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/state"
)

func TestFleetMeasure(t *testing.T) {
	slo := state.SLO{MinDecodeTPS: 10}
	old := state.Canary{At: time.Unix(1, 0).UTC(), DecodeTPS: 99, Fingerprint: "f", Baseline: "f"}
	healthy := &worker{ready: idle(), tokens: sixteen(), end: workerapi.Event{TokensOut: Tokens, TokensPerSecond: 321}, token: "tok-a"}
	failing := &worker{ready: idle(), token: "tok-a", infer: func(w http.ResponseWriter) {
		api.WriteError(w, api.Errorf(http.StatusInternalServerError, "DECODE_FAILED", "llama_decode returned -1"))
	}}
	other := &worker{ready: idle(), tokens: sixteen(), end: workerapi.Event{TokensOut: Tokens, TokensPerSecond: 321}, token: "tok-b"}
	urls := map[*worker]string{}
	for _, wk := range []*worker{healthy, failing, other} {
		urls[wk] = wk.start(t).URL
	}
	cases := []struct {
		name     string
		w        state.WorkerRecord
		measured bool   // new figures
		failed   string // Canary.Failed contains this
	}{
		{"an idle worker with an slo is measured", state.WorkerRecord{State: state.WorkerIdle, SLO: slo, URL: urls[healthy]}, true, ""},
		{"a busy one too (on a free slot)", state.WorkerRecord{State: state.WorkerBusy, SLO: slo, URL: urls[healthy]}, true, ""},
		{"no slo: no canary", state.WorkerRecord{State: state.WorkerIdle, URL: urls[healthy]}, false, ""},
		{"a loading worker is not measured", state.WorkerRecord{State: state.WorkerLoading, SLO: slo, URL: urls[healthy]}, false, ""},
		{"a crashed worker is not measured", state.WorkerRecord{State: state.WorkerCrashed, SLO: slo, URL: urls[healthy]}, false, ""},
		{"a failure keeps the figures and says why", state.WorkerRecord{State: state.WorkerIdle, SLO: slo, URL: urls[failing]}, false, "llama_decode returned -1"},
		{"the node's hive token is sent", state.WorkerRecord{Node: "b", State: state.WorkerIdle, SLO: slo, URL: urls[other]}, true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.w
			w.Pool, w.Model, w.Canary = "chat", "tiny", old
			if w.Node == "" {
				w.Node = "a"
			}
			live := state.NewSnapshot()
			live.Put(&state.NodeRecord{Name: w.Node, BinarySHA256: strings.Repeat("ab", 32)})
			live.Put(&state.ModelRecord{Node: w.Node, Name: "tiny", ActualSHA256: "sha-live"})
			live.Put(&w)
			var logs bytes.Buffer
			f := &Fleet{Timeout: 10 * time.Second, Log: slog.New(slog.NewTextHandler(&logs, nil))}
			tokens := map[string]string{"a": "tok-a", "b": "tok-b"}
			now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
			f.Measure(context.Background(), live, nil, func(node string) (string, error) { return tokens[node], nil }, now)
			c := live.Worker("chat", w.Node, 0).Canary
			if tc.measured {
				if c.DecodeTPS != 321 || !c.At.Equal(now) || c.BaselineModel != "sha-live" || c.Engine != "abababababab cpu/haswell" || c.Failed != "" {
					t.Errorf("canary = %+v, want the new figures on sha-live and engine abababababab cpu/haswell", c)
				}
				return
			}
			if c.DecodeTPS != old.DecodeTPS || !c.At.Equal(old.At) {
				t.Errorf("canary = %+v, want the old figures kept", c)
			}
			if tc.failed == "" && c.Failed != "" {
				t.Errorf("canary failed = %q, want none", c.Failed)
			}
			if tc.failed != "" && (!strings.Contains(c.Failed, tc.failed) || !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "worker.chat[a/0]")) {
				t.Errorf("canary failed = %q, log %q: want the cause recorded and a warning naming the worker", c.Failed, logs.String())
			}
		})
	}
}

func TestFleetSkipsANodeWithoutToken(t *testing.T) {
	wk := &worker{ready: idle(), tokens: sixteen(), end: workerapi.Event{TokensOut: Tokens, TokensPerSecond: 321}}
	url := wk.start(t).URL
	live := state.NewSnapshot()
	live.Put(&state.WorkerRecord{Pool: "chat", Node: "a", Model: "tiny", State: state.WorkerIdle, SLO: state.SLO{MaxTTFT: time.Second}, URL: url})
	f := &Fleet{}
	f.Measure(context.Background(), live, nil, func(string) (string, error) { return "", errors.New("no token file") }, time.Now())
	if c := live.Worker("chat", "a", 0).Canary; !c.At.IsZero() || len(wk.requests()) != 0 {
		t.Errorf("a node whose token cannot be read was measured: %+v", c)
	}
}

// The model file a worker was created on is the one recorded before the
// refresh: a file replaced since is what the fingerprint is compared on.
func TestModelSHAPrefersTheRecordedFile(t *testing.T) {
	rec, live := state.NewSnapshot(), state.NewSnapshot()
	w := &state.WorkerRecord{Pool: "chat", Node: "a", Model: "tiny"}
	live.Put(&state.ModelRecord{Node: "a", Name: "tiny", ActualSHA256: "replaced"})
	cases := []struct {
		recorded *state.Snapshot
		want     string
	}{
		{nil, "replaced"},
		{rec, "replaced"}, // nothing recorded for it yet
	}
	for _, tc := range cases {
		if got := modelSHA(tc.recorded, live, w); got != tc.want {
			t.Errorf("modelSHA = %q, want %q", got, tc.want)
		}
	}
	rec.Put(&state.ModelRecord{Node: "a", Name: "tiny", ActualSHA256: "created-on"})
	if got := modelSHA(rec, live, w); got != "created-on" {
		t.Errorf("modelSHA = %q, want the recorded created-on", got)
	}
}

package planner

import (
	"strings"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/state"
)

func TestCanaryWarnings(t *testing.T) {
	at := time.Unix(100, 0).UTC()
	cases := []struct {
		name   string
		canary state.Canary
		want   string // "" no warning
	}{
		{"a canary that ran", state.Canary{At: at, DecodeTPS: 50}, ""},
		{"no canary yet", state.Canary{}, ""},
		{"a failed canary", state.Canary{At: at, DecodeTPS: 50, Failed: "canary request: context deadline exceeded"},
			"worker.chat[a/0]: the canary failed, so its slo figures are from an earlier refresh: canary request: context deadline exceeded"},
	}
	for _, tc := range cases {
		live := state.NewSnapshot()
		live.Put(&state.WorkerRecord{Pool: "chat", Node: "a", Model: "m", SLO: state.SLO{MinDecodeTPS: 10}, Canary: tc.canary})
		got := strings.Join(canaryWarnings(live), "\n")
		if got != tc.want {
			t.Errorf("%s: warnings %q, want %q", tc.name, got, tc.want)
		}
		// A failed canary is not drift: its figures are old, not slow.
		if w := live.Worker("chat", "a", 0); tc.canary.Failed != "" && len(sloReasons(w)) != 0 {
			t.Errorf("%s: a failed canary above its slo is drift: %q", tc.name, sloReasons(w))
		}
	}
}

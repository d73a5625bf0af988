package planner

import (
	"fmt"
	"strings"
	"time"

	"github.com/rbee-dev/rbee/digest"
	"github.com/rbee-dev/rbee/state"
)

// Drift lists how the refreshed snapshot differs from the recorded one, as
// changes: Update for a record whose live status differs, Delete for a record
// that vanished, Create for one that appeared.
func Drift(recorded, live *state.Snapshot) []*Change {
	var out []*Change
	for _, a := range recorded.Addrs() {
		before, _ := recorded.Get(a)
		after, ok := live.Get(a)
		if !ok {
			out = append(out, &Change{Addr: a, Action: Delete, Before: before, Reasons: []string{"no longer reported by its hive"}})
			continue
		}
		if reasons := driftReasons(before, after); len(reasons) > 0 {
			out = append(out, &Change{Addr: a, Action: Update, Before: before, After: after, Reasons: reasons})
		}
	}
	for _, a := range live.Addrs() {
		if _, ok := recorded.Get(a); !ok {
			after, _ := live.Get(a)
			out = append(out, &Change{Addr: a, Action: Create, After: after, Reasons: []string{"reported by a hive but not in state"}})
		}
	}
	return out
}

func driftReasons(before, after state.Record) []string {
	var out []string
	cmp := func(field string, a, b any) {
		if a != b {
			out = append(out, arrow(field, a, b))
		}
	}
	switch b := before.(type) {
	case *state.NodeRecord:
		a := after.(*state.NodeRecord)
		cmp("status", b.Status, a.Status)
		cmp("hive_version", b.HiveVersion, a.HiveVersion)
		if b.BinarySHA256 != a.BinarySHA256 {
			out = append(out, arrow("binary_sha256", digest.Short(b.BinarySHA256), digest.Short(a.BinarySHA256)))
		}
		cmp("hive_url", b.HiveURL, a.HiveURL)
	case *state.ModelRecord:
		a := after.(*state.ModelRecord)
		cmp("status", b.Status, a.Status)
		if b.ActualSHA256 != a.ActualSHA256 {
			out = append(out, arrow("actual_sha256", digest.Short(b.ActualSHA256), digest.Short(a.ActualSHA256)))
		}
		cmp("size", b.Size, a.Size)
		cmp("path", b.Path, a.Path)
	case *state.WorkerRecord:
		a := after.(*state.WorkerRecord)
		cmp("state", b.State, a.State)
		cmp("restarts", b.Restarts, a.Restarts)
		cmp("port", b.Port, a.Port)
		cmp("url", b.URL, a.URL)
		out = append(out, sloReasons(a)...)
	}
	return out
}

// sloReasons judges what the canary last measured on worker w against its
// pool's SLO, and its output against the fingerprint taken when the worker
// was created. A slow or changed worker is drift, not a change: replacing it
// would not make its machine faster, so rbee reports it and does nothing.
func sloReasons(w *state.WorkerRecord) []string {
	c, s := w.Canary, w.SLO
	if c.At.IsZero() {
		return nil
	}
	var out []string
	if s.MinDecodeTPS > 0 && c.DecodeTPS < s.MinDecodeTPS {
		out = append(out, fmt.Sprintf("decode %.1f tok/s < slo %g", c.DecodeTPS, s.MinDecodeTPS))
	}
	if s.MaxTTFT > 0 && c.TTFT > s.MaxTTFT {
		out = append(out, fmt.Sprintf("ttft %s > slo %s", c.TTFT.Round(time.Millisecond), s.MaxTTFT))
	}
	if c.Baseline != "" && c.Fingerprint != c.Baseline {
		out = append(out, fmt.Sprintf("outputs changed (canary fingerprint %s, %s when the worker was created, on the same model file and engine build)", c.Fingerprint, c.Baseline))
	}
	if len(out) > 0 {
		out[len(out)-1] += " (drift, not a change)"
	}
	return out
}

// Degraded reports whether refresh found a worker below its pool's SLO or
// answering otherwise than when it was created: drift that no change fixes,
// which -detailed-exitcode still reports (exit 2).
func (p *Plan) Degraded() bool {
	for _, c := range p.Drift {
		if w, ok := c.After.(*state.WorkerRecord); ok && len(sloReasons(w)) > 0 {
			return true
		}
	}
	return false
}

// canaryWarnings is a line for each worker of live whose latest canary
// failed: its SLO figures are older than this refresh, not drift.
func canaryWarnings(live *state.Snapshot) []string {
	var out []string
	for _, a := range live.Addrs() {
		r, _ := live.Get(a)
		if w, ok := r.(*state.WorkerRecord); ok && w.Canary.Failed != "" {
			out = append(out, fmt.Sprintf("%s: the canary failed, so its slo figures are from an earlier refresh: %s", a, w.Canary.Failed))
		}
	}
	return out
}

func showSLO(s state.SLO) string {
	var parts []string
	if s.MinDecodeTPS > 0 {
		parts = append(parts, fmt.Sprintf("min_decode_tps %g", s.MinDecodeTPS))
	}
	if s.MaxTTFT > 0 {
		parts = append(parts, "max_ttft "+s.MaxTTFT.String())
	}
	if len(parts) == 0 {
		return "none"
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

package planner

import (
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
	}
	return out
}

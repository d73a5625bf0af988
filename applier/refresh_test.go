package applier

import (
	"errors"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/state"
)

func TestMerge(t *testing.T) {
	recorded := func() *state.Snapshot {
		s := state.NewSnapshot()
		s.Put(state.NodeRecord{Name: "n1", HiveURL: "http://127.0.0.2:9200", Status: state.NodeReady, BinarySHA256: "aaa"})
		s.Put(state.ModelRecord{Node: "n1", Name: "tiny", ActualSHA256: "m1", Status: state.ModelReady})
		s.Put(state.WorkerRecord{Pool: "chat", Node: "n1", Index: 0, Model: "tiny", ID: "chat-0", State: state.WorkerIdle, Port: 8001})
		return s
	}
	healthy := func() *hiveapi.State {
		return &hiveapi.State{Version: "1", BinarySHA256: "aaa",
			Models:  []hiveapi.Model{{Name: "tiny", SHA256: "m1"}},
			Workers: []hiveapi.WorkerStatus{{ID: "chat-0", State: hiveapi.StateIdle, Port: 8001, PID: 42}}}
	}
	tests := []struct {
		name   string
		live   func() Live
		node   string // want node status
		model  string // want model status
		worker string // want worker state
		check  func(t *testing.T, s *state.Snapshot)
	}{
		{"healthy", func() Live { return Live{State: healthy()} }, state.NodeReady, state.ModelReady, state.WorkerIdle, nil},
		{"unreachable", func() Live { return Live{Err: errors.New("connection refused")} }, state.NodeUnreachable, state.ModelReady, state.WorkerIdle,
			func(t *testing.T, s *state.Snapshot) {
				if len(s.Node("n1").Warnings) == 0 {
					t.Error("no warning says why the node is unreachable")
				}
			}},
		{"worker gone", func() Live { st := healthy(); st.Workers = nil; return Live{State: st} }, state.NodeReady, state.ModelReady, state.WorkerMissing, nil},
		{"worker failed", func() Live { st := healthy(); st.Workers[0].State = hiveapi.StateFailed; return Live{State: st} }, state.NodeReady, state.ModelReady, state.WorkerFailed, nil},
		{"worker restarting", func() Live { st := healthy(); st.Workers[0].State = hiveapi.StateRestarting; return Live{State: st} }, state.NodeReady, state.ModelReady, state.WorkerCrashed, nil},
		{"model deleted", func() Live { st := healthy(); st.Models = nil; return Live{State: st} }, state.NodeReady, state.ModelMissing, state.WorkerIdle, nil},
		{"model changed", func() Live { st := healthy(); st.Models[0].SHA256 = "m2"; return Live{State: st} }, state.NodeReady, state.ModelChanged, state.WorkerIdle, nil},
		{"binary replaced", func() Live { st := healthy(); st.BinarySHA256 = "bbb"; return Live{State: st} }, state.NodeReady, state.ModelReady, state.WorkerIdle,
			func(t *testing.T, s *state.Snapshot) {
				if s.Node("n1").BinarySHA256 != "bbb" {
					t.Error("the replaced binary's checksum is not reported")
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := recorded()
			Merge(s, "n1", tc.live(), time.Now())
			if got := s.Node("n1").Status; got != tc.node {
				t.Errorf("node status %q, want %q", got, tc.node)
			}
			if got := s.Model("n1", "tiny").Status; got != tc.model {
				t.Errorf("model status %q, want %q", got, tc.model)
			}
			if got := s.Worker("chat", "n1", 0).State; got != tc.worker {
				t.Errorf("worker state %q, want %q", got, tc.worker)
			}
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

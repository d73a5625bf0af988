package applier

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/api"
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
		node   state.NodeStatus  // want node status
		model  state.ModelStatus // want model status
		worker state.WorkerState // want worker state
		check  func(t *testing.T, s *state.Snapshot)
	}{
		{"healthy", func() Live { return Live{State: healthy()} }, state.NodeReady, state.ModelReady, state.WorkerIdle, nil},
		{"unreachable", func() Live { return Live{Err: errors.New("connection refused")} }, state.NodeUnreachable, state.ModelReady, state.WorkerIdle,
			func(t *testing.T, s *state.Snapshot) {
				if len(s.Node("n1").Warnings) == 0 {
					t.Error("no warning says why the node is unreachable")
				}
			}},
		{"token refused", func() Live { return Live{Err: &api.Error{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED"}} }, state.NodeTokenRefused, state.ModelReady, state.WorkerIdle,
			func(t *testing.T, s *state.Snapshot) {
				if w := s.Node("n1").Warnings; len(w) != 1 || !strings.Contains(w[0], "refused rbee's token (401)") {
					t.Errorf("warnings %q do not say the hive refused the token", w)
				}
			}},
		{"worker gone", func() Live { st := healthy(); st.Workers = nil; return Live{State: st} }, state.NodeReady, state.ModelReady, state.WorkerMissing, nil},
		{"worker failed", func() Live { st := healthy(); st.Workers[0].State = hiveapi.StateFailed; return Live{State: st} }, state.NodeReady, state.ModelReady, state.WorkerFailed, nil},
		{"worker restarting", func() Live { st := healthy(); st.Workers[0].State = hiveapi.StateRestarting; return Live{State: st} }, state.NodeReady, state.ModelReady, state.WorkerCrashed, nil},
		{"model deleted", func() Live { st := healthy(); st.Models = nil; return Live{State: st} }, state.NodeReady, state.ModelMissing, state.WorkerIdle, nil},
		{"model changed", func() Live { st := healthy(); st.Models[0].SHA256 = "m2"; return Live{State: st} }, state.NodeReady, state.ModelChanged, state.WorkerIdle, nil},
		{"worker restarted by the hive on a new port", func() Live {
			st := healthy()
			st.Workers[0].PID, st.Workers[0].Port, st.Workers[0].URL, st.Workers[0].Restarts = 43, 8002, "http://127.0.0.2:8002", 1
			return Live{State: st}
		}, state.NodeReady, state.ModelReady, state.WorkerIdle,
			func(t *testing.T, s *state.Snapshot) {
				w := s.Worker("chat", "n1", 0)
				if w.PID != 43 || w.Port != 8002 || w.URL != "http://127.0.0.2:8002" || w.Restarts != 1 {
					t.Errorf("worker keeps stale live fields: %+v", *w)
				}
			}},
		{"model download finished after apply was killed", func() Live {
			st := healthy()
			st.Models[0].Path, st.Models[0].Size = "/m/tiny.gguf", 1234
			return Live{State: st}
		}, state.NodeReady, state.ModelReady, state.WorkerIdle,
			func(t *testing.T, s *state.Snapshot) {
				if m := s.Model("n1", "tiny"); m.Size != 1234 || m.Path != "/m/tiny.gguf" {
					t.Errorf("model keeps stale live fields: %+v", *m)
				}
			}},
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

// TestChanged checks that every live field refresh learned is written back,
// even those the plan's drift does not show (a restarted worker's pid), and
// that contact times alone write nothing.
func TestChanged(t *testing.T) {
	recorded := state.NewSnapshot()
	recorded.Put(state.NodeRecord{Name: "n1", Status: state.NodeReady, LastContact: time.Unix(1, 0)})
	recorded.Put(state.ModelRecord{Node: "n1", Name: "tiny", Status: state.ModelDownloading})
	recorded.Put(state.WorkerRecord{Pool: "chat", Node: "n1", Index: 0, State: state.WorkerIdle, PID: 41, Port: 8001})
	tests := []struct {
		name   string
		mutate func(s *state.Snapshot)
		want   []state.Addr
	}{
		{"nothing new", func(s *state.Snapshot) {}, nil},
		{"only the contact time", func(s *state.Snapshot) { s.Node("n1").LastContact = time.Unix(2, 0) }, nil},
		{"new pid", func(s *state.Snapshot) { s.Worker("chat", "n1", 0).PID = 42 }, []state.Addr{state.WorkerAddr("chat", "n1", 0)}},
		{"download finished", func(s *state.Snapshot) {
			m := s.Model("n1", "tiny")
			m.Status, m.Size = state.ModelReady, 1234
		}, []state.Addr{state.ModelAddr("n1", "tiny")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			live := recorded.Clone()
			tc.mutate(live)
			var got []state.Addr
			for _, r := range Changed(recorded, live) {
				got = append(got, r.Addr())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Changed = %v, want %v", got, tc.want)
			}
		})
	}
}

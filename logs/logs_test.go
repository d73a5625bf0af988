package logs

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rbee-dev/rbee/applier"
	"github.com/rbee-dev/rbee/state"
)

func TestNewLines(t *testing.T) {
	tests := []struct {
		name            string
		prev, cur, want []string
	}{
		{"nothing before", nil, []string{"a", "b"}, []string{"a", "b"}},
		{"nothing new", []string{"a", "b"}, []string{"a", "b"}, []string{}},
		{"growing", []string{"a", "b"}, []string{"a", "b", "c"}, []string{"c"}},
		{"window moved", []string{"x", "a", "b"}, []string{"a", "b", "c"}, []string{"c"}},
		{"repeated lines", []string{"a", "a"}, []string{"a", "a", "a"}, []string{"a"}},
		{"window moved past all of it", []string{"a", "b"}, []string{"c", "d"}, []string{"c", "d"}},
		{"emptied", []string{"a"}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newLines(tt.prev, tt.cur); !slices.Equal(got, tt.want) {
				t.Errorf("newLines(%q, %q) = %q, want %q", tt.prev, tt.cur, got, tt.want)
			}
		})
	}
}

// TestHiveSource reads a local node's hive log through the real transport.
func TestHiveSource(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	logf := filepath.Join(dir, "hive.log")
	write := func(s string, flag int) {
		f, err := os.OpenFile(logf, flag|os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	write("one\ntwo\nthree\n", os.O_TRUNC)
	hl, err := applier.OpenHiveLog(ctx, &state.NodeRecord{Name: "local", Connection: "local", InstallDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	src := &hiveSource{name: "node.local", log: hl}
	defer src.Close()
	steps := []struct {
		name   string
		append string
		flag   int
		tail   int // > 0: Lines(tail), else Since
		want   []string
	}{
		{"the last lines", "", 0, 2, []string{"two", "three"}},
		{"nothing new", "", 0, 0, nil},
		{"a line and a half", "four\nfi", os.O_APPEND, 0, []string{"four"}},
		{"the rest of the half", "ve\n", os.O_APPEND, 0, []string{"five"}},
		{"truncated: from the start", "new\n", os.O_TRUNC, 0, []string{"new"}},
	}
	for _, st := range steps {
		if st.append != "" {
			write(st.append, st.flag)
		}
		var got []string
		if st.tail > 0 {
			got, err = src.Lines(ctx, st.tail)
		} else {
			got, err = src.Since(ctx)
		}
		if err != nil || !slices.Equal(got, st.want) {
			t.Fatalf("%s: got %q, %v; want %q", st.name, got, err, st.want)
		}
	}
}

func TestOpenUnknownAddress(t *testing.T) {
	snap := state.NewSnapshot()
	snap.Nodes[state.NodeAddr("local")] = &state.NodeRecord{Name: "local", Connection: "local"}
	snap.Workers[state.WorkerAddr("chat", "local", 0)] = &state.WorkerRecord{Pool: "chat", Node: "local", ID: "chat-0"}
	tests := []struct{ addr, want string }{
		{"worker.chat[local/1]", `"worker.chat[local/1]" is not in the state; the logs are those of node.local, worker.chat[local/0]`},
		{"node.gpu1", `"node.gpu1" is not in the state; the logs are those of node.local, worker.chat[local/0]`},
		{"model.tiny@local", `"model.tiny@local" has no log`},
		{"chat-0", `"chat-0" has no log; the logs are those of`},
	}
	for _, tt := range tests {
		_, err := Open(context.Background(), snap, tt.addr, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%s): %v, want %q", tt.addr, err, tt.want)
		}
	}
}

package reconciler

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/rbee-dev/rbee/internal/promcheck"
)

const fleet = `node "local" {
  connection = "local"
  hive_port  = 19999
}
model "tiny" {
  source = "synth:tiny"
}
pool "chat" {
  model    = "tiny"
  nodes    = ["local"]
  replicas = %REPLICAS%
  slots    = 1
  ctx_size = 256
}
`

func fleetWith(replicas string) []byte {
	return []byte(strings.ReplaceAll(fleet, "%REPLICAS%", replicas))
}

func TestRelevant(t *testing.T) {
	fileMode := &fileWatch{dir: "/cfg", file: "rbee.hcl"}
	dirMode := &fileWatch{dir: "/cfg"}
	tests := []struct {
		name string
		fw   *fileWatch
		ev   fsnotify.Event
		want bool
	}{
		{"write to the file", fileMode, fsnotify.Event{Name: "/cfg/rbee.hcl", Op: fsnotify.Write}, true},
		{"renamed over the file", fileMode, fsnotify.Event{Name: "/cfg/rbee.hcl", Op: fsnotify.Create}, true},
		{"the file removed", fileMode, fsnotify.Event{Name: "/cfg/rbee.hcl", Op: fsnotify.Remove}, true},
		{"only chmod", fileMode, fsnotify.Event{Name: "/cfg/rbee.hcl", Op: fsnotify.Chmod}, false},
		{"editor temp file", fileMode, fsnotify.Event{Name: "/cfg/.rbee.hcl.swp", Op: fsnotify.Write}, false},
		{"backup file", fileMode, fsnotify.Event{Name: "/cfg/rbee.hcl~", Op: fsnotify.Create}, false},
		{"other hcl in the file's folder", fileMode, fsnotify.Event{Name: "/cfg/other.hcl", Op: fsnotify.Write}, false},
		{"new hcl in the folder", dirMode, fsnotify.Event{Name: "/cfg/pools.hcl", Op: fsnotify.Create}, true},
		{"hcl removed from the folder", dirMode, fsnotify.Event{Name: "/cfg/pools.hcl", Op: fsnotify.Remove}, true},
		{"non-hcl in the folder", dirMode, fsnotify.Event{Name: "/cfg/notes.txt", Op: fsnotify.Write}, false},
		{"state folder", dirMode, fsnotify.Event{Name: "/cfg/.rbee", Op: fsnotify.Create}, false},
		{"file in a subfolder", dirMode, fsnotify.Event{Name: "/cfg/sub/x.hcl", Op: fsnotify.Write}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.fw.relevant(tt.ev); got != tt.want {
				t.Fatalf("relevant(%v) = %v, want %v", tt.ev, got, tt.want)
			}
		})
	}
}

// waitChange waits for one debounced change signal (generous bound: the
// test checks that the signal comes, not how fast).
func waitChange(t *testing.T, fw *fileWatch, what string) {
	t.Helper()
	select {
	case <-fw.changes:
	case <-time.After(10 * time.Second):
		t.Fatalf("no change reported after %s", what)
	}
}

func TestFileWatchSaves(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rbee.hcl")
	if err := os.WriteFile(path, fleetWith("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	fw, err := newFileWatch(path, 50*time.Millisecond, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go fw.run(ctx)

	// Truncate and write in place.
	if err := os.WriteFile(path, fleetWith("2"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitChange(t, fw, "truncate-and-write")

	// Write a temporary file, then rename it over the original (vim, IDEs).
	tmp := filepath.Join(dir, ".rbee.hcl.tmp")
	if err := os.WriteFile(tmp, fleetWith("3"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	waitChange(t, fw, "rename-on-save")

	// A burst of writes is one change.
	for i := 0; i < 5; i++ {
		if err := os.WriteFile(path, fleetWith("1"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	waitChange(t, fw, "a burst of writes")
	// A second report would come one debounce after the last event; wait
	// ten debounce periods for it.
	select {
	case <-fw.changes:
		t.Fatal("a burst of writes was reported twice")
	case <-time.After(10 * 50 * time.Millisecond):
	}
}

func TestFileWatchFolder(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nodes.hcl"), fleetWith("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	fw, err := newFileWatch(dir, 50*time.Millisecond, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go fw.run(ctx)
	extra := filepath.Join(dir, "pools.hcl")
	if err := os.WriteFile(extra, []byte("# more\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitChange(t, fw, "adding a file")
	if err := os.Remove(extra); err != nil {
		t.Fatal(err)
	}
	waitChange(t, fw, "removing a file")
}

func newTestReconciler(t *testing.T, path string) *Reconciler {
	t.Helper()
	r, err := New(context.Background(), Options{
		ConfigPath: path,
		StateDir:   filepath.Join(filepath.Dir(path), ".rbee"),
		PlanOnly:   true,
		Debounce:   50 * time.Millisecond,
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A plan-only pass over an empty state plans the whole fleet; an invalid
// edit is reported with its diagnostics and the last good configuration
// stays in force; fixing it clears the error.
func TestPlanOnlyInvalidThenFixed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rbee.hcl")
	if err := os.WriteFile(path, fleetWith("2"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newTestReconciler(t, path)
	ctx := context.Background()

	r.reconcile(ctx, trigger{kind: "start"})
	st := r.Status()
	if st.LastPlan == nil || st.LastPlan.Add != 4 {
		t.Fatalf("first plan = %+v, want 4 to add (node, model, 2 workers)", st.LastPlan)
	}
	if !st.Config.Valid || st.LastError != nil {
		t.Fatalf("valid config reported as %+v, error %+v", st.Config, st.LastError)
	}
	good := st.Config.Hash

	if err := os.WriteFile(path, []byte(strings.Replace(string(fleetWith("2")), `model    = "tiny"`, `model    = "tinyy"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	r.reconcile(ctx, trigger{kind: "file", at: time.Now()})
	st = r.Status()
	if st.Config.Valid {
		t.Fatal("invalid configuration reported valid")
	}
	if st.Config.Hash != good {
		t.Fatalf("config hash in force changed to %s on an invalid edit; want the last good %s", st.Config.Hash, good)
	}
	if st.LastError == nil || st.LastError.Stage != "config" || len(st.LastError.Diagnostics) == 0 {
		t.Fatalf("last error = %+v, want config diagnostics", st.LastError)
	}
	d := st.LastError.Diagnostics[0]
	if d.File != path || d.Line != 9 || !strings.Contains(d.Detail, "tinyy") {
		t.Fatalf("diagnostic = %+v, want %s line 9 naming tinyy", d, path)
	}
	if !strings.Contains(st.LastError.Text, "9 |") {
		t.Fatalf("diagnostic text lacks the source line:\n%s", st.LastError.Text)
	}

	// A timer pass with the file still invalid plans against the last good configuration.
	r.reconcile(ctx, trigger{kind: "timer"})
	if p := r.Status().LastPlan; p.Trigger != "timer" || p.ConfigHash != good {
		t.Fatalf("timer plan = %+v, want one against the last good config %s", p, good)
	}

	if err := os.WriteFile(path, fleetWith("3"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.reconcile(ctx, trigger{kind: "file", at: time.Now()})
	st = r.Status()
	if !st.Config.Valid || st.LastError != nil || st.Config.Hash == good || st.LastPlan.Add != 5 {
		t.Fatalf("after the fix: config %+v, error %+v, plan %+v", st.Config, st.LastError, st.LastPlan)
	}
	if st.LastApply != nil {
		t.Fatalf("plan-only applied: %+v", st.LastApply)
	}
}

func TestHandler(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rbee.hcl")
	if err := os.WriteFile(path, fleetWith("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newTestReconciler(t, path)
	r.reconcile(context.Background(), trigger{kind: "start"})
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, k := range []string{"config", "last_plan", "last_apply", "drift", "last_error", "mode", "phase"} {
		if _, ok := st[k]; !ok {
			t.Errorf("status has no %q: %v", k, st)
		}
	}
	if st["mode"] != "plan-only" {
		t.Errorf("mode = %v", st["mode"])
	}

	resp, err = http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`rbee_watch_reconciles_total{trigger="start"} 1`, "rbee_watch_pending_changes 3", "rbee_watch_config_valid 1",
		"rbee_watch_drift_resources 0", "rbee_watch_reconcile_duration_seconds_bucket"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	promcheck.Check(t, body)

	resp, err = http.Get(srv.URL + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope = %d, want 404", resp.StatusCode)
	}
}

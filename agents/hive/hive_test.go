package hive

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/backoff"
	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/api"
)

// newTestHive starts a hive whose "rbee" is a shell script, so that the
// supervisor's process handling can be tested without llama.cpp.
func newTestHive(t testing.TB, script string) (*Hive, *hiveapi.Client) {
	t.Helper()
	dir := t.TempDir()
	exe := filepath.Join(dir, "fake-rbee")
	if err := os.WriteFile(exe, []byte("#!/bin/bash\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "data"), Executable: exe,
		StopGrace: 300 * time.Millisecond, FirstWorkerPort: 18001, Log: discardLogger(), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	h.restart = backoff.Policy{Base: time.Millisecond, Max: 5 * time.Millisecond}
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(func() { srv.Close(); h.Shutdown() })
	return h, hiveapi.NewClient(srv.URL, "")
}

func TestClientModelsAndState(t *testing.T) {
	_, c := newTestHive(t, "sleep 1000")
	ctx := context.Background()
	var events []hiveapi.Progress
	m, err := c.PutModel(ctx, "tiny", hiveapi.ModelSpec{Source: "synth:tiny"}, func(p hiveapi.Progress) { events = append(events, p) })
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "tiny" || m.Architecture != "llama" || len(events) == 0 || events[len(events)-1].Bytes != m.Size {
		t.Fatalf("model %+v, events %+v", m, events)
	}
	again, err := c.PutModel(ctx, "tiny", hiveapi.ModelSpec{Source: "synth:tiny", SHA256: m.SHA256}, nil)
	if err != nil || !reflect.DeepEqual(again, m) {
		t.Fatalf("second PutModel = %+v, %v", again, err)
	}
	st, err := c.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != "test" || len(st.BinarySHA256) != 64 || len(st.Models) != 1 || st.Resources.CPUCount < 1 {
		t.Errorf("state %+v", st)
	}
	_, err = c.PutModel(ctx, "bad", hiveapi.ModelSpec{Source: "nope:x"}, func(hiveapi.Progress) {})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "INVALID_REF" {
		t.Errorf("bad ref: %v", err)
	}
	if err := c.DeleteModel(ctx, "tiny"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteModel(ctx, "tiny"); !errors.As(err, &ae) || ae.Status != 404 {
		t.Errorf("second delete: %v", err)
	}
	if h, err := c.Health(ctx); err != nil || h.Status != "ok" {
		t.Errorf("health %+v %v", h, err)
	}
}

// A worker that ignores SIGTERM (and whose child does too) is killed with
// SIGKILL after the grace period, with its whole process group, and reaped.
func TestShutdownKillsStubbornWorkers(t *testing.T) {
	dir := t.TempDir()
	childFile := filepath.Join(dir, "child.pid")
	h, c := newTestHive(t, "trap '' TERM\nsleep 1000 &\necho $! > "+childFile+"\nwait")
	ctx := context.Background()
	if _, err := c.PutModel(ctx, "tiny", hiveapi.ModelSpec{Source: "synth:tiny"}, nil); err != nil {
		t.Fatal(err)
	}
	st, err := c.PutWorker(ctx, "w", hiveapi.WorkerConfig{Model: "tiny", CtxSize: 512, Slots: 1}, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200 && st.PID == 0; i++ {
		time.Sleep(20 * time.Millisecond)
		ws, err := c.Workers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st = ws[0]
	}
	if st.State != hiveapi.StateLoading || st.PID <= 0 || st.Port < 18001 {
		t.Fatalf("status %+v", st)
	}
	var child int
	deadline := time.Now().Add(10 * time.Second)
	for child == 0 && time.Now().Before(deadline) {
		b, _ := os.ReadFile(childFile)
		child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		time.Sleep(20 * time.Millisecond)
	}
	if child == 0 {
		t.Fatal("the fake worker did not start its child")
	}
	start := time.Now()
	h.Shutdown()
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("shutdown took %s", d)
	}
	for _, pid := range []int{st.PID, child} {
		if err := syscall.Kill(pid, 0); err == nil {
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			t.Errorf("pid %d is still there after shutdown: %s", pid, b)
		}
	}
	logs := h.logsFor("w").Tail(5)
	if !strings.Contains(strings.Join(logs, "\n"), "stopped") {
		t.Errorf("logs do not note the stop: %q", logs)
	}
}

// A worker that dies at once is restarted with backoff and marked failed
// after a crash loop, unless it exits with workerapi.ExitLoadFailed: then it
// is failed at once. last_error keeps the line that says why, not the last
// one. Intentions persist across a new Hive on the same dir.
func TestCrashLoopAndIntentions(t *testing.T) {
	dump := "echo 'loading model'; echo 'error: tensor blk.0 has a bad shape'; echo 'r0 = 0x0'; echo 'r1 = 0x1'"
	tests := []struct {
		name     string
		script   string
		restarts int
		lastErr  []string
	}{
		{"crash loop", dump + "; exit 1", crashLoopCount - 1, []string{"crash loop", "exited with status 1", "error: tensor blk.0 has a bad shape"}},
		{"load failed", dump + "; exit 3", 0, []string{"model load failed", "exited with status 3", "error: tensor blk.0 has a bad shape"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, c := newTestHive(t, tt.script)
			ctx := context.Background()
			if _, err := c.PutModel(ctx, "tiny", hiveapi.ModelSpec{Source: "synth:tiny"}, nil); err != nil {
				t.Fatal(err)
			}
			_, err := c.PutWorker(ctx, "w", hiveapi.WorkerConfig{Model: "tiny", CtxSize: 512, Slots: 1}, true)
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Code != "WORKER_START_FAILED" {
				t.Fatalf("PutWorker = %v, want WORKER_START_FAILED", err)
			}
			deadline := time.Now().Add(20 * time.Second)
			var ws []hiveapi.WorkerStatus
			for time.Now().Before(deadline) {
				ws, err = c.Workers(ctx)
				if err == nil && len(ws) == 1 && ws[0].State == hiveapi.StateFailed {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if len(ws) != 1 || ws[0].State != hiveapi.StateFailed || ws[0].Restarts != tt.restarts {
				t.Fatalf("workers %+v", ws)
			}
			for _, want := range tt.lastErr {
				if !strings.Contains(ws[0].LastError, want) {
					t.Errorf("last_error %q does not contain %q", ws[0].LastError, want)
				}
			}
			if strings.Contains(ws[0].LastError, "r1 = 0x1") {
				t.Errorf("last_error shows the register dump: %q", ws[0].LastError)
			}
			lines, err := c.WorkerLogs(ctx, "w", 3)
			if err != nil || len(lines) == 0 {
				t.Fatalf("logs %q %v", lines, err)
			}
			h2, err := New(h.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer h2.Shutdown()
			if len(h2.workers) != 1 || h2.workers["w"].cfg.Model != "tiny" {
				t.Errorf("intentions not restored: %+v", h2.workers)
			}
		})
	}
}

func TestFileRootsMustBeFolders(t *testing.T) {
	dir := t.TempDir()
	_, err := New(Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "data"), FileRoots: []string{filepath.Join(dir, "missing")}, Log: discardLogger()})
	if err == nil || !strings.Contains(err.Error(), "--file-roots") {
		t.Fatalf("New with a missing file root = %v, want a --file-roots error", err)
	}
}

func TestWhyLine(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  string
	}{
		{"assertion before a dump", []string{"load", "GGML_ASSERT(n > 0) failed", "rax 0x1", "rbx 0x2"}, "GGML_ASSERT(n > 0) failed"},
		{"panic", []string{"goroutine 1", "panic: boom", "main.go:3"}, "panic: boom"},
		{"no keyword: last line", []string{"a", "b"}, "b"},
		{"hive notes skipped", []string{"worker said error: x", "[hive] killed by signal"}, "worker said error: x"},
		{"earlier runs ignored", []string{"error: old", "[hive] starting: rbee worker", "fine"}, "fine"},
		{"nothing", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := whyLine(tt.lines); got != tt.want {
				t.Errorf("whyLine = %q, want %q", got, tt.want)
			}
		})
	}
}

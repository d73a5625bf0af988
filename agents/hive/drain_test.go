package hive

import (
	"context"
	"encoding/json"
	"flag"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/agents/worker/workerapi"
)

// fakeWorkerEnv makes the test binary act as a worker (see TestMain): a
// stand-in for workers of other releases and for a request that never ends,
// which the real worker cannot be made to show on demand. Its value is the
// mode: "old" has no drain endpoint (404), "stuck" drains but always has one
// request in flight.
const fakeWorkerEnv = "RBEE_HIVE_TEST_FAKE_WORKER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeWorkerEnv); mode != "" {
		fakeWorker(mode)
		return
	}
	os.Exit(m.Run())
}

func fakeWorker(mode string) {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	port := fs.Int("port", 0, "")
	host := fs.String("host", "127.0.0.1", "")
	fs.String("model", "", "")
	fs.Int("slots", 1, "")
	fs.Int("ctx-size", 0, "")
	fs.Int("threads", 0, "")
	fs.String("worker-id", "", "")
	fs.String("callback-url", "", "")
	fs.String("token-file", "", "")
	if len(os.Args) < 2 || fs.Parse(os.Args[2:]) != nil {
		os.Exit(2)
	}
	mux := http.NewServeMux()
	ready := workerapi.Ready{Ready: true, State: workerapi.StateBusy, SlotsTotal: 1, InFlight: 1}
	mux.HandleFunc("GET /v1/ready", func(w http.ResponseWriter, r *http.Request) { _ = json.NewEncoder(w).Encode(ready) })
	if mode == "stuck" {
		mux.HandleFunc("POST /v1/admin/drain", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			_ = json.NewEncoder(w).Encode(ready)
		})
	}
	_ = http.ListenAndServe(net.JoinHostPort(*host, strconv.Itoa(*port)), mux)
	os.Exit(1)
}

// newFakeWorkerHive is a hive whose workers are this test binary in mode.
func newFakeWorkerHive(t *testing.T, mode string) (*Hive, *hiveapi.Client) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	h, err := New(Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "data"), Executable: exe,
		Env: append(os.Environ(), fakeWorkerEnv+"="+mode), StopGrace: 300 * time.Millisecond,
		FirstWorkerPort: 18101, Log: discardLogger(), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	srv := http.Server{Handler: h.Handler()}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close(); h.Shutdown() })
	return h, hiveapi.NewClient("http://"+l.Addr().String(), "")
}

// A worker without the drain endpoint is stopped at once; one whose request
// never ends is stopped when its drain_timeout passes. Either way the DELETE
// ends: its time is bounded by the drain timeout, never by the request.
func TestDeleteDrainsWithinItsTimeout(t *testing.T) {
	tests := []struct {
		mode, drain string
		sawDraining bool
	}{
		{"old", "10m", false},
		{"stuck", "300ms", true},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			h, c := newFakeWorkerHive(t, tt.mode)
			ctx := context.Background()
			if _, err := c.PutModel(ctx, "tiny", hiveapi.ModelSpec{Source: "synth:tiny"}, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := c.PutWorker(ctx, "w", hiveapi.WorkerConfig{Model: "tiny", Slots: 1, CtxSize: 512, DrainTimeout: tt.drain}, true); err != nil {
				t.Fatal(err)
			}
			h.mu.Lock()
			wk := h.workers["w"]
			h.mu.Unlock()
			seen := make(chan bool, 1)
			go func() {
				draining := false
				for {
					st := wk.status()
					draining = draining || st.State == hiveapi.StateDraining
					if st.State == hiveapi.StateStopped {
						seen <- draining
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()
			dctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if err := c.DeleteWorker(dctx, "w"); err != nil {
				t.Fatalf("DELETE: %v (a drain that waits for a request that never ends?)", err)
			}
			if got := <-seen; got != tt.sawDraining {
				t.Errorf("state draining seen = %v, want %v", got, tt.sawDraining)
			}
		})
	}
}

// A new drain_timeout applies to the running worker: no restart.
func TestDrainTimeoutIsAnUpdateInPlace(t *testing.T) {
	h, c := newFakeWorkerHive(t, "stuck")
	ctx := context.Background()
	if _, err := c.PutModel(ctx, "tiny", hiveapi.ModelSpec{Source: "synth:tiny"}, nil); err != nil {
		t.Fatal(err)
	}
	cfg := hiveapi.WorkerConfig{Model: "tiny", Slots: 1, CtxSize: 512, DrainTimeout: "300ms"}
	first, err := c.PutWorker(ctx, "w", cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DrainTimeout = "1s"
	again, err := c.PutWorker(ctx, "w", cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	if again.PID != first.PID || again.ConfigHash != first.ConfigHash || again.Config.DrainTimeout != "1s" {
		t.Fatalf("after a drain_timeout change: %+v, before: %+v", again, first)
	}
	h2, err := New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Shutdown()
	if got := h2.workers["w"].drainTimeout(); got != time.Second {
		t.Errorf("persisted drain timeout = %s, want 1s", got)
	}
}

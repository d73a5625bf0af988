package infer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/spec"
	"github.com/rbee-dev/rbee/state"
)

// faultyWorker answers /v1/ready like a worker, then fails a request the way
// a broken worker does on a real TCP connection: it goes quiet (a stopped
// process), drops the connection mid-stream (a killed one), or is gone when
// the request comes (connection refused). The features produce the same
// faults with real worker processes (SIGSTOP, kill -9).
type faultyWorker struct {
	url       string
	ln        net.Listener
	fault     string // "stall", "drop", "drop+exit", "gone", "" (healthy)
	slotsFree int
	mu        sync.Mutex
	cancelled []string
}

func newFaultyWorker(t *testing.T, fault string, slotsFree int) *faultyWorker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &faultyWorker{url: "http://" + ln.Addr().String(), ln: ln, fault: fault, slotsFree: slotsFree}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ready", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, 200, workerapi.Ready{Ready: true, State: "idle", SlotsTotal: 4, SlotsFree: f.slotsFree})
		if f.fault == "gone" {
			_ = ln.Close() // the next connection is refused
		}
	})
	mux.HandleFunc("POST /v1/inference", f.infer)
	mux.HandleFunc("DELETE /v1/inference/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.cancelled = append(f.cancelled, r.PathValue("id"))
		f.mu.Unlock()
		api.WriteJSON(w, 200, workerapi.CancelResponse{JobID: r.PathValue("id"), Cancelled: true})
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return f
}

func (f *faultyWorker) infer(w http.ResponseWriter, r *http.Request) {
	var req workerapi.InferenceRequest
	_ = json.NewDecoder(r.Body).Decode(&req)
	w.Header().Set("Content-Type", "text/event-stream")
	send := func(ev workerapi.Event) {
		b, _ := json.Marshal(ev)
		fmt.Fprintf(w, "data: %s\n\n", b)
		w.(http.Flusher).Flush()
	}
	send(workerapi.Event{Type: "started", JobID: req.JobID})
	for i := range 2 {
		send(workerapi.Event{Type: "token", T: fmt.Sprintf("t%d ", i), I: i})
	}
	switch f.fault {
	case "stall":
		<-r.Context().Done()
		return
	case "drop", "drop+exit":
		if f.fault == "drop+exit" {
			_ = f.ln.Close()
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return
	}
	send(workerapi.Event{Type: "end", JobID: req.JobID, TokensOut: 2, StopReason: "max_tokens"})
	fmt.Fprint(w, "data: [DONE]\n\n")
}

func (f *faultyWorker) cancelledJobs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cancelled...)
}

// faultFleet records the workers in a fresh state, in order.
func faultFleet(t *testing.T, workers ...*faultyWorker) *state.Store {
	t.Helper()
	ctx := context.Background()
	st, err := state.Open(ctx, t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs := []state.Record{state.NodeRecord{Name: "local", Connection: "local", HivePort: 9200, Status: state.NodeReady}}
	for i, w := range workers {
		recs = append(recs, state.WorkerRecord{Pool: "chat", Node: "local", Index: i, Model: "tiny",
			ID: fmt.Sprintf("chat-%d", i), URL: w.url, State: state.WorkerIdle, Worker: spec.Worker{Slots: 4, CtxSize: 1024}})
	}
	if err := st.Put(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestRunWorkerFaults(t *testing.T) {
	tests := []struct {
		name      string
		faults    []string // one worker each; the first has the most free slots, so it is tried first
		check     func(t *testing.T, err error)
		cancelled bool   // the first worker got DELETE for the job
		text      string // streamed text, when the run succeeds
	}{
		{
			name: "a stalled worker is cancelled and named", faults: []string{"stall"}, cancelled: true,
			check: func(t *testing.T, err error) {
				var s *StallError
				if !errors.As(err, &s) || s.Tokens != 2 || s.Worker != "worker.chat[local/0]" {
					t.Fatalf("want a StallError after 2 tokens from worker.chat[local/0], got %#v (%v)", s, err)
				}
				if !strings.Contains(err.Error(), "stalled: nothing for 300ms after 2 tokens; the job was cancelled") {
					t.Errorf("message: %v", err)
				}
			},
		},
		{
			name: "a dropped connection names the tokens and the worker", faults: []string{"drop"}, cancelled: true,
			check: func(t *testing.T, err error) {
				var b *BrokenStreamError
				if !errors.As(err, &b) || b.Tokens != 2 || b.Exited {
					t.Fatalf("want a BrokenStreamError after 2 tokens, worker still listening, got %#v (%v)", b, err)
				}
				if !strings.Contains(err.Error(), "worker.chat[local/0] (http://") || !strings.Contains(err.Error(), "stopped streaming after 2 tokens: the worker exited or the connection to it broke") {
					t.Errorf("message: %v", err)
				}
			},
		},
		{
			name: "a worker that exits mid-stream is said to have exited", faults: []string{"drop+exit"},
			check: func(t *testing.T, err error) {
				var b *BrokenStreamError
				if !errors.As(err, &b) || b.Tokens != 2 || !b.Exited {
					t.Fatalf("want a BrokenStreamError after 2 tokens, worker gone, got %#v (%v)", b, err)
				}
				if !strings.Contains(err.Error(), "the worker exited (its port now refuses connections") {
					t.Errorf("message: %v", err)
				}
			},
		},
		{
			name: "a worker gone before the first token is retried on another", faults: []string{"gone", ""},
			text: "t0 t1 ",
			check: func(t *testing.T, err error) {
				if err != nil {
					t.Fatalf("the second worker should have run it: %v", err)
				}
			},
		},
		{
			name: "every ready worker gone", faults: []string{"gone", "gone"},
			check: func(t *testing.T, err error) {
				var n *NoAnswerError
				if !errors.As(err, &n) || len(n.Gone) != 2 {
					t.Fatalf("want a NoAnswerError naming 2 workers, got %v", err)
				}
				if !strings.Contains(err.Error(), "worker.chat[local/1] (http://") || !strings.Contains(err.Error(), "refused the connection") {
					t.Errorf("message: %v", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ws []*faultyWorker
			for i, f := range tt.faults {
				ws = append(ws, newFaultyWorker(t, f, 4-i))
			}
			r := &Router{
				State: faultFleet(t, ws...), StallTimeout: 300 * time.Millisecond, Backoff: []time.Duration{},
				// One connection per request, as when the request goes to a new worker process.
				HTTP: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, text, err := run(t, r, ctx, Request{Model: "tiny", Params: workerapi.InferenceRequest{Prompt: "hi", JobID: "job-1"}})
			tt.check(t, err)
			if tt.text != "" && text != tt.text {
				t.Errorf("streamed %q, want %q (outcome %+v)", text, tt.text, out)
			}
			if got := ws[0].cancelledJobs(); tt.cancelled != (len(got) == 1 && got[0] == "job-1") {
				t.Errorf("first worker cancelled jobs %v, want cancelled=%v", got, tt.cancelled)
			}
		})
	}
}

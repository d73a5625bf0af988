package infer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/spec"
	"github.com/rbee-dev/rbee/state"
)

// fakeWorker speaks the worker's wire protocol with canned answers. The
// router's logic (choice, retries, cancellation) is what is tested here; the
// real worker is exercised by the features.
type fakeWorker struct {
	srv        *httptest.Server
	slotsFree  int
	busy       atomic.Int32 // POSTs still to answer 503 ALL_SLOTS_BUSY
	hold       chan struct{}
	posts      atomic.Int32
	mu         sync.Mutex
	cancelled  []string
	sawToken   string
	tokensSent int
}

func newFakeWorker(t *testing.T, slotsFree int) *fakeWorker {
	f := &fakeWorker{slotsFree: slotsFree, tokensSent: 3}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ready", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, 200, workerapi.Ready{Ready: true, State: "idle", SlotsTotal: 4, SlotsFree: f.slotsFree})
	})
	mux.HandleFunc("POST /v1/inference", func(w http.ResponseWriter, r *http.Request) {
		f.posts.Add(1)
		f.mu.Lock()
		f.sawToken = r.Header.Get("Authorization")
		f.mu.Unlock()
		if f.busy.Load() > 0 {
			f.busy.Add(-1)
			api.WriteError(w, api.Errorf(503, CodeBusy, "all 4 slots are busy"))
			return
		}
		var req workerapi.InferenceRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "text/event-stream")
		send := func(ev workerapi.Event) {
			b, _ := json.Marshal(ev)
			fmt.Fprintf(w, "data: %s\n\n", b)
			w.(http.Flusher).Flush()
		}
		send(workerapi.Event{Type: "started", JobID: req.JobID})
		for i := range f.tokensSent {
			send(workerapi.Event{Type: "token", T: fmt.Sprintf("t%d ", i), I: i})
		}
		if f.hold != nil {
			select {
			case <-f.hold:
			case <-r.Context().Done():
				return
			}
		}
		send(workerapi.Event{Type: "end", JobID: req.JobID, TokensOut: f.tokensSent, StopReason: "max_tokens"})
		fmt.Fprint(w, "data: [DONE]\n\n")
	})
	mux.HandleFunc("DELETE /v1/inference/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.cancelled = append(f.cancelled, r.PathValue("id"))
		f.mu.Unlock()
		api.WriteJSON(w, 200, workerapi.CancelResponse{JobID: r.PathValue("id"), Cancelled: true})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// fleet writes worker records for the fakes into a fresh state.
func fleet(t *testing.T, model string, workers ...*fakeWorker) *state.Store {
	t.Helper()
	ctx := context.Background()
	st, err := state.Open(ctx, t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs := []state.Record{state.NodeRecord{Name: "local", Connection: "local", HivePort: 9200, Status: state.NodeReady}}
	for i, w := range workers {
		recs = append(recs, state.WorkerRecord{Pool: "chat", Node: "local", Index: i, Model: model,
			ID: fmt.Sprintf("chat-%d", i), URL: w.srv.URL, State: state.WorkerIdle, Worker: spec.Worker{Slots: 4, CtxSize: 1024}})
	}
	if err := st.Put(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	return st
}

func run(t *testing.T, r *Router, ctx context.Context, req Request) (Outcome, string, error) {
	var b strings.Builder
	out, err := r.Run(ctx, req, func(w Worker, ev workerapi.Event) error {
		if ev.Type == workerapi.EventToken {
			b.WriteString(ev.T)
		}
		return nil
	})
	return out, b.String(), err
}

func TestRunPicksMostFreeSlots(t *testing.T) {
	a, b := newFakeWorker(t, 1), newFakeWorker(t, 3)
	r := &Router{State: fleet(t, "tiny", a, b), Token: func(string) (string, error) { return "s3cret", nil }}
	out, text, err := run(t, r, context.Background(), Request{Model: "tiny", Params: workerapi.InferenceRequest{Prompt: "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Worker.URL != b.srv.URL || b.posts.Load() != 1 || a.posts.Load() != 0 {
		t.Fatalf("went to %s (posts a=%d b=%d), want the worker with 3 free slots", out.Worker.URL, a.posts.Load(), b.posts.Load())
	}
	if text != "t0 t1 t2 " || out.Tokens != 3 || out.End.StopReason != "max_tokens" {
		t.Fatalf("text %q tokens %d end %+v", text, out.Tokens, out.End)
	}
	if b.sawToken != "Bearer s3cret" {
		t.Fatalf("Authorization = %q", b.sawToken)
	}
	if !strings.HasPrefix(out.JobID, "infer-") || out.Worker.Addr.String() != "worker.chat[local/1]" {
		t.Fatalf("job %q worker %s", out.JobID, out.Worker.Name())
	}
}

func TestRunBusyTriesOtherThenBacksOff(t *testing.T) {
	tests := []struct {
		name         string
		busyA, busyB int32
		wantErr      bool
		wantAttempts int
	}{
		{"other worker takes it", 1, 0, false, 2},
		{"both busy once, then one frees", 1, 1, false, 3},
		{"busy through every retry", 100, 100, true, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newFakeWorker(t, 2), newFakeWorker(t, 1)
			a.busy.Store(tc.busyA)
			b.busy.Store(tc.busyB)
			r := &Router{State: fleet(t, "tiny", a, b), Backoff: []time.Duration{time.Millisecond, time.Millisecond}}
			out, _, err := run(t, r, context.Background(), Request{Model: "tiny", Params: workerapi.InferenceRequest{Prompt: "hi"}})
			var be *BusyError
			if tc.wantErr != (err != nil) || (tc.wantErr && !errors.As(err, &be)) {
				t.Fatalf("err = %v, want busy error: %v", err, tc.wantErr)
			}
			if out.Attempts != tc.wantAttempts {
				t.Fatalf("attempts = %d, want %d", out.Attempts, tc.wantAttempts)
			}
		})
	}
}

func TestRunCancelDeletesJob(t *testing.T) {
	w := newFakeWorker(t, 1)
	w.hold = make(chan struct{})
	defer close(w.hold)
	r := &Router{State: fleet(t, "tiny", w)}
	ctx, cancel := context.WithCancelCause(context.Background())
	var jobID string
	_, err := r.Run(ctx, Request{Model: "tiny", Params: workerapi.InferenceRequest{Prompt: "hi"}}, func(_ Worker, ev workerapi.Event) error {
		if ev.Type == workerapi.EventStarted {
			jobID = ev.JobID
		}
		if ev.Type == workerapi.EventToken && ev.I == 2 {
			cancel(ErrInterrupted)
		}
		return nil
	})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.cancelled) != 1 || w.cancelled[0] != jobID || jobID == "" {
		t.Fatalf("cancelled %v, want [%s]", w.cancelled, jobID)
	}
}

func TestRunNoWorkerHints(t *testing.T) {
	down := newFakeWorker(t, 1)
	down.srv.Close()
	cat := func() (Catalog, error) {
		return Catalog{Models: map[string][]string{"tiny": {"chat"}, "lonely": nil}, Nodes: []string{"local"}}, nil
	}
	tests := []struct {
		name, model string
		store       *state.Store
		want        []string
		unknown     bool
	}{
		{"worker down", "tiny", fleet(t, "tiny", down), []string{`no ready worker for model "tiny"`, "worker.chat[local/0]", `Pool "chat" serves it`, "rbee apply"}, false},
		{"nothing applied", "tiny", fleet(t, "tiny"), []string{"the state records no worker", `Pool "chat" serves it`}, false},
		{"no pool", "lonely", fleet(t, "tiny"), []string{"No pool serves it", `model = "lonely"`, "rbee apply"}, false},
		{"unknown", "nope", fleet(t, "tiny"), []string{`unknown model "nope"`, `"lonely", "tiny"`}, true},
		{"no fleet, no file", "tiny", nil, []string{`unknown model "tiny"`, "rbee.hcl: no such file", "--config"}, true},
	}
	noConfig := func() (Catalog, error) { return Catalog{}, errors.New("rbee.hcl: no such file") }
	empty := fleet(t, "tiny")
	_ = empty.Delete(context.Background(), state.NodeAddr("local"))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &Router{State: tc.store, Catalog: cat, ProbeTimeout: time.Second}
			if tc.store == nil {
				r.State, r.Catalog = empty, noConfig
			}
			_, _, err := run(t, r, context.Background(), Request{Model: tc.model, Params: workerapi.InferenceRequest{Prompt: "hi"}})
			var ue *UnknownModelError
			var ne *NoWorkerError
			if tc.unknown && !errors.As(err, &ue) || !tc.unknown && !errors.As(err, &ne) {
				t.Fatalf("err = %T %v", err, err)
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q:\n%v", s, err)
				}
			}
		})
	}
}

// TestRunUnknownNode checks that --node with a node the configuration does
// not declare says so, instead of telling the user to apply.
func TestRunUnknownNode(t *testing.T) {
	cat := func() (Catalog, error) {
		return Catalog{Models: map[string][]string{"tiny": {"chat"}}, Nodes: []string{"local"}}, nil
	}
	r := &Router{State: fleet(t, "tiny"), Catalog: cat, ProbeTimeout: time.Second}
	_, _, err := run(t, r, context.Background(), Request{Model: "tiny", Node: "ghost", Params: workerapi.InferenceRequest{Prompt: "hi"}})
	var ne *NoWorkerError
	if !errors.As(err, &ne) {
		t.Fatalf("err = %T %v", err, err)
	}
	for _, s := range []string{`node "ghost" is not in the configuration`, `the nodes are "local"`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error lacks %q:\n%v", s, err)
		}
	}
	if strings.Contains(err.Error(), "rbee apply") {
		t.Errorf("error tells to apply, which cannot help:\n%v", err)
	}
}

// TestRunInterruptedWhileWaitingForASlot checks that an interrupt during the
// busy backoff reports no worker: no job ran, so none was cancelled.
func TestRunInterruptedWhileWaitingForASlot(t *testing.T) {
	w := newFakeWorker(t, 1)
	w.busy.Store(100)
	r := &Router{State: fleet(t, "tiny", w), Backoff: []time.Duration{time.Hour}}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	out, _, err := run(t, r, ctx, Request{Model: "tiny", Params: workerapi.InferenceRequest{Prompt: "hi"}})
	if err == nil {
		t.Fatal("no error")
	}
	if out.Worker.URL != "" {
		t.Fatalf("the outcome names %s, where no job ran", out.Worker.URL)
	}
	if n := len(w.cancelled); n != 0 {
		t.Fatalf("%d cancel requests for a job that never ran", n)
	}
}

func TestNoteHandler(t *testing.T) {
	tests := []struct {
		log  func(l *slog.Logger)
		want string
	}{
		{func(l *slog.Logger) { l.Info("plain") }, "rbee: plain\n"},
		{func(l *slog.Logger) { l.Info("with", "worker", "chat-0", "n", 2) }, "rbee: with (worker=chat-0, n=2)\n"},
		{func(l *slog.Logger) { l.With("node", "gpu1").Warn("bound") }, "rbee: bound (node=gpu1)\n"},
		{func(l *slog.Logger) { l.Debug("hidden") }, ""},
	}
	for _, tc := range tests {
		var b strings.Builder
		tc.log(slog.New(NoteHandler(&b, slog.LevelInfo)))
		if b.String() != tc.want {
			t.Errorf("got %q, want %q", b.String(), tc.want)
		}
	}
}

// TestStatsLineSubMillisecondPrompt checks that a prompt the worker timed at
// 0 ms (it reports whole milliseconds) reads "under 1 ms", not "- tok/s".
func TestStatsLineSubMillisecondPrompt(t *testing.T) {
	out := Outcome{Worker: Worker{Addr: state.WorkerAddr("chat", "local", 0), URL: "http://127.0.0.1:8001"},
		End: workerapi.Event{Type: workerapi.EventEnd, TokensOut: 3, PromptTokens: 5, PromptTimeMS: 0, DecodeTimeMS: 30}}
	line := StatsLine(out)
	if !strings.Contains(line, "prompt 5 tokens (under 1 ms)") {
		t.Fatalf("stats line %q", line)
	}
}

func TestOutput(t *testing.T) {
	w := Worker{Addr: state.WorkerAddr("chat", "local", 0), URL: "http://127.0.0.1:8001"}
	events := []workerapi.Event{
		{Type: workerapi.EventStarted, JobID: "infer-1"},
		{Type: workerapi.EventToken, T: " Once", I: 0},
		{Type: workerapi.EventToken, T: "", I: 1}, // an incomplete character
		{Type: workerapi.EventToken, T: " upon", I: 2},
	}
	done := Outcome{Worker: w, JobID: "infer-1", Tokens: 3, FirstToken: 12 * time.Millisecond, Total: 40 * time.Millisecond, Attempts: 1,
		End: workerapi.Event{Type: workerapi.EventEnd, TokensOut: 3, PromptTokens: 4, PromptTimeMS: 10, DecodeTimeMS: 30, StopReason: "max_tokens"}}
	render := func(asJSON bool) (string, string) {
		var stdout, stderr strings.Builder
		o := &Output{Stdout: &stdout, Stderr: &stderr, JSON: asJSON}
		sink := o.Sink()
		for _, ev := range events {
			if err := sink(w, ev); err != nil {
				t.Fatal(err)
			}
		}
		if err := o.Done(done); err != nil {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String()
	}

	stdout, stderr := render(false)
	if stdout != " Once upon\n" {
		t.Errorf("text stdout = %q", stdout)
	}
	for _, want := range []string{"worker.chat[local/0] at http://127.0.0.1:8001", "prompt 4 tokens (400.0 tok/s)", "decode 3 tokens (100.0 tok/s)", "first token after 12ms", "stop: max_tokens"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stats line lacks %q: %s", want, stderr)
		}
	}

	stdout, stderr = render(true)
	want := `{"type":"start","worker":"worker.chat[local/0]","url":"http://127.0.0.1:8001","job_id":"infer-1"}
{"type":"token","t":" Once","i":0}
{"type":"token","t":"","i":1}
{"type":"token","t":" upon","i":2}
{"type":"end","worker":"worker.chat[local/0]","url":"http://127.0.0.1:8001","job_id":"infer-1","tokens_out":3,"prompt_tokens":4,"prompt_time_ms":10,"decode_time_ms":30,"prompt_tokens_per_second":400,"decode_tokens_per_second":100,"first_token_ms":12,"total_ms":40,"stop_reason":"max_tokens","attempts":1}
`
	if stdout != want || stderr != "" {
		t.Errorf("JSON stdout:\n%s\nwant:\n%s\nstderr: %q", stdout, want, stderr)
	}
}

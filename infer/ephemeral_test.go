package infer

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/spec"
	"github.com/rbee-dev/rbee/state"
)

// TestEphemeralWorkerKeepsThePoolContext checks that an ephemeral worker gets
// the pool's ctx_size: it is the context of each slot (as the worker and the
// hive's preflight read it), so one slot needs the same, not ctx_size/slots.
func TestEphemeralWorkerKeepsThePoolContext(t *testing.T) {
	worker := newFakeWorker(t, 1)
	var mu sync.Mutex
	var got []hiveapi.WorkerConfig
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/workers/{id}", func(w http.ResponseWriter, r *http.Request) {
		var cfg hiveapi.WorkerConfig
		_ = json.NewDecoder(r.Body).Decode(&cfg)
		mu.Lock()
		got = append(got, cfg)
		mu.Unlock()
		api.WriteJSON(w, 201, hiveapi.WorkerStatus{ID: r.PathValue("id"), Model: cfg.Model, URL: worker.srv.URL, State: "idle", SlotsTotal: 1, SlotsFree: 1, Config: cfg})
	})
	mux.HandleFunc("DELETE /v1/workers/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		api.WriteError(w, api.Errorf(404, "NOT_FOUND", "no such endpoint"))
	})
	hive := httptest.NewServer(mux)
	t.Cleanup(hive.Close)

	ctx := context.Background()
	st, err := state.Open(ctx, t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx,
		state.NodeRecord{Name: "local", Connection: "local", HiveURL: hive.URL, Status: state.NodeReady},
		state.ModelRecord{Node: "local", Name: "tiny", Status: state.ModelReady},
		state.WorkerRecord{Pool: "chat", Node: "local", Model: "tiny", ID: "chat-0", State: state.WorkerStopped, Worker: spec.Worker{Slots: 4, CtxSize: 1024}},
	); err != nil {
		t.Fatal(err)
	}
	r := &Router{State: st}
	if _, _, err := run(t, r, ctx, Request{Model: "tiny", Ephemeral: true, Params: workerapi.InferenceRequest{Prompt: "hi"}}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var eph *hiveapi.WorkerConfig
	for i := range got {
		if got[i].Slots == 1 {
			eph = &got[i]
		}
	}
	if eph == nil {
		t.Fatalf("no ephemeral worker was started: %+v", got)
	}
	if eph.CtxSize != 1024 {
		t.Fatalf("ephemeral worker ctx_size %d, want the pool's 1024 per slot", eph.CtxSize)
	}
}

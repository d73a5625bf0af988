package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/rbee-dev/rbee/state"
)

// newTestServer is a gateway over an empty state whose fleet the test fills
// in by hand (it is never refreshed: Run is not started).
func newTestServer(t testing.TB) *Server {
	t.Helper()
	st, err := state.Open(context.Background(), t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{State: st})
	if err != nil {
		t.Fatal(err)
	}
	s.fleet = testFleet(1)
	s.metrics = newMetrics(s.fleet)
	s.routes()
	close(s.primed)
	return s
}

func TestBadRequestsAnswerInOpenAIShape(t *testing.T) {
	s := newTestServer(t)
	cases := []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"not JSON", PathChat, "{", http.StatusBadRequest, "INVALID_JSON"},
		{"no model", PathChat, `{"messages":[]}`, http.StatusBadRequest, "MISSING_FIELD"},
		{"unknown model", PathCompletions, `{"model":"nope","prompt":"x"}`, http.StatusNotFound, CodeUnknownModel},
		{"too large", PathCompletions, `{"model":"chat","prompt":"` + strings.Repeat("x", 1<<20) + `"}`, http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE"},
		{"no such endpoint", "/v1/nope", `{}`, http.StatusNotFound, "NOT_FOUND"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, c.path, strings.NewReader(c.body)))
			var body struct {
				Error apiError `json:"error"`
			}
			if rec.Code != c.status || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Error.Code != c.code || body.Error.Message == "" || body.Error.Type == "" {
				t.Fatalf("%d %s, want %d with code %s", rec.Code, rec.Body.String(), c.status, c.code)
			}
		})
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, PathChat, strings.NewReader(`{"model":"nope"}`)))
	if !strings.Contains(rec.Body.String(), `\"chat\", \"tiny\"`) {
		t.Fatalf("the 404 does not list the names that exist: %s", rec.Body.String())
	}
}

func TestModelsListsPoolsAndModels(t *testing.T) {
	s := newTestServer(t)
	s.fleet.workers["worker.chat[local/0]"].ready = false
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, PathModels, nil))
	var list struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || list.Object != "list" || len(list.Data) != 2 {
		t.Fatalf("GET /v1/models: %s", rec.Body.String())
	}
	want := []model{
		{ID: "chat", Object: "model", OwnedBy: "rbee", Kind: "pool", ReadyWorkers: 0, Workers: 1},
		{ID: "tiny", Object: "model", OwnedBy: "rbee", Kind: "model", ReadyWorkers: 0, Workers: 1},
	}
	for i, m := range want {
		if list.Data[i] != m {
			t.Errorf("entry %d: %+v, want %+v", i, list.Data[i], m)
		}
	}
}

// The exposition passes promtool's lint (promtool comes with the Debian
// prometheus package that scripts/deps.sh installs).
func TestMetricsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (apt-get install prometheus, or scripts/deps.sh)")
	}
	s := newTestServer(t)
	h := s.Handler()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, PathChat, strings.NewReader(`{"model":"nope"}`)))
	s.metrics.requests.WithLabelValues("chat", outcomeOK).Inc()
	s.metrics.queueWait.WithLabelValues("chat").Observe(0.2)
	s.metrics.ttft.WithLabelValues("chat").Observe(0.05)
	s.metrics.tokens.WithLabelValues("chat").Add(12)
	s.metrics.retries.WithLabelValues("chat", "busy").Inc()
	s.fleet.queues["chat"] = &queue{}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	out := rec.Body.String()
	for _, name := range []string{"rbee_gateway_requests_total", "rbee_gateway_queue_depth", "rbee_gateway_queue_wait_seconds_bucket", "rbee_gateway_time_to_first_token_seconds_bucket", "rbee_gateway_tokens_out_total", `rbee_gateway_workers{state="idle"} 1`, `outcome="unknown_model"`} {
		if !strings.Contains(out, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(out)
	if res, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, res)
	}
}

// Hostile bodies never crash the gateway and always get an answer in the
// error shape (or pass to a worker, which here cannot be reached).
func FuzzInference(f *testing.F) {
	for _, seed := range []string{
		`{"model":"chat","messages":[{"role":"user","content":"hi"}],"stream":true}`,
		`{"model":"tiny","prompt":["a","b"]}`,
		`{"model":"nope"}`, `{"model":null}`, `[]`, `{"messages":[{"content":{}}]}`, "\x00",
	} {
		f.Add(seed)
	}
	s := newTestServer(f)
	s.fleet.workers["worker.chat[local/0]"].url = "http://127.0.0.1:1" // nothing listens there
	s.opts.QueueTimeout = 1
	f.Fuzz(func(t *testing.T, body string) {
		for _, p := range []string{PathChat, PathCompletions, PathEmbeddings} {
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, p, bytes.NewReader([]byte(body))))
			b, _ := io.ReadAll(rec.Body)
			if rec.Code/100 != 2 && !json.Valid(b) {
				t.Fatalf("%s answered %d with a body that is not JSON: %q", p, rec.Code, b)
			}
		}
		s.fleet.mu.Lock()
		w := s.fleet.workers["worker.chat[local/0]"]
		w.refused, w.ready = false, true
		n := w.inflight
		s.fleet.mu.Unlock()
		if n != 0 {
			t.Fatalf("%d requests still counted on the worker", n)
		}
	})
}

package worker

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/engine"
)

// TestMetricsPassPromtool runs Prometheus's own linter on /metrics after
// every kind of series has a sample; any complaint fails the test.
func TestMetricsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (Debian package prometheus; scripts/deps.sh installs it)")
	}
	s, err := New(Config{ModelPath: "tiny.gguf", Port: MinPort})
	if err != nil {
		t.Fatal(err)
	}
	s.metrics.observe("inference", engine.Stats{PromptTokens: 5, CachedTokens: 3, Tokens: 9, PromptTime: 20 * time.Millisecond,
		DecodeTime: time.Second, StopReason: engine.StopMaxTokens}, 2*time.Second)
	s.writeError(httptest.NewRecorder(), "completions", api.Errorf(http.StatusServiceUnavailable, "ALL_SLOTS_BUSY", "busy"))
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"rbee_worker_slots 4", "rbee_worker_time_to_first_token_seconds_bucket", "rbee_worker_request_duration_seconds_count{endpoint=\"inference\"} 1",
		"rbee_worker_prompt_tokens_cached_total 3", "rbee_worker_in_flight 0", "rbee_worker_draining 0"} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestEveryRouteChecksItsMethod: a wrong method is a 405 with Allow, on
// every route, /metrics included.
func TestEveryRouteChecksItsMethod(t *testing.T) {
	s, err := New(Config{ModelPath: "tiny.gguf", Port: MinPort})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodDelete, "/metrics", "GET, HEAD"},
		{http.MethodPut, "/metrics", "GET, HEAD"},
		{http.MethodPost, "/health", "GET, HEAD"},
		{http.MethodPost, "/v1/ready", "GET, HEAD"},
		{http.MethodDelete, "/v1/models", "GET, HEAD"},
		{http.MethodGet, "/v1/inference", "POST"},
		{http.MethodPost, "/v1/inference/job-1", "DELETE"},
		{http.MethodGet, "/v1/completions", "POST"},
		{http.MethodPut, "/v1/chat/completions", "POST"},
		{http.MethodGet, "/v1/embeddings", "POST"},
		{http.MethodGet, "/v1/admin/drain", "POST"},
		{http.MethodDelete, "/v1/admin/shutdown", "POST"},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, strings.NewReader("{}")))
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != tc.allow || !strings.Contains(w.Body.String(), "METHOD_NOT_ALLOWED") {
			t.Errorf("%s %s: %d Allow %q %s, want 405 Allow %q METHOD_NOT_ALLOWED", tc.method, tc.path, w.Code, w.Header().Get("Allow"), w.Body, tc.allow)
		}
	}
}

package hive

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
)

func scrape(t *testing.T, h *Hive) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	h.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d: %s", rec.Code, rec.Body)
	}
	b, _ := io.ReadAll(rec.Body)
	return b
}

func TestMetricsSeries(t *testing.T) {
	h, c := newTestHive(t, "echo 'error: cannot load'; exit 3")
	ctx := context.Background()
	if _, err := c.PutModel(ctx, "tiny", hiveapi.ModelSpec{Source: "synth:tiny"}, nil); err != nil {
		t.Fatal(err)
	}
	_, _ = c.PutWorker(ctx, "w", hiveapi.WorkerConfig{Model: "tiny", Pool: "chat", CtxSize: 512, Slots: 1}, true)
	_, _ = c.PutWorker(ctx, "g", hiveapi.WorkerConfig{Model: "tiny", Backend: "cuda"}, false)
	body := scrape(t, h)
	for _, want := range []string{
		`rbee_hive_workers{state="failed"} 1`,
		`rbee_hive_workers{state="idle"} 0`,
		`rbee_hive_worker_failures_total{pool="chat",reason="load_failed"} 1`,
		`rbee_hive_preflight_refusals_total{code="BACKEND_UNAVAILABLE"} 1`,
		`rbee_hive_download_bytes_total 0`,
		`rbee_hive_download_failures_total 0`,
		`rbee_hive_download_resumes_total 0`,
		"rbee_hive_ram_available_bytes ",
		"rbee_hive_disk_free_bytes ",
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

// TestMetricsPassPromtool runs the real `promtool check metrics` (Debian
// package prometheus) on a scrape: it must print nothing.
func TestMetricsPassPromtool(t *testing.T) {
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (apt-get install prometheus); the metrics lint is skipped")
	}
	h, _ := newTestHive(t, "sleep 1000")
	h.metrics.restarts.WithLabelValues("chat").Inc()
	h.metrics.preflights.WithLabelValues("INSUFFICIENT_RAM").Inc()
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = bytes.NewReader(scrape(t, h))
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestMetricsMethods(t *testing.T) {
	h, _ := newTestHive(t, "sleep 1000")
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPost} {
		rec := httptest.NewRecorder()
		h.Handler().ServeHTTP(rec, httptest.NewRequest(m, "/metrics", strings.NewReader("{}")))
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET" {
			t.Errorf("%s /metrics = %d (Allow %q), want 405 with Allow: GET", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
}

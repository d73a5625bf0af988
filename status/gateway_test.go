package status

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The gateway's queue depth is read from its real exposition format; a
// gateway that does not answer is reported, not skipped.
func TestGatewayQueues(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte("# HELP rbee_gateway_queue_depth Requests waiting.\n# TYPE rbee_gateway_queue_depth gauge\n" +
			"rbee_gateway_queue_depth{model=\"chat\"} 3\nrbee_gateway_queue_depth{model=\"tiny\"} 0\n"))
	}))
	defer srv.Close()
	g := &Gatherer{}
	tests := []struct {
		name, url, key, want string
	}{
		{"queues", srv.URL, "k", "queued requests: chat 3, tiny 0"},
		{"wrong key", srv.URL, "x", "unreachable: GET " + srv.URL + "/metrics: 401 Unauthorized"},
		{"down", "http://127.0.0.1:1", "", "unreachable:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := gatewayLine(g.gateway(context.Background(), tt.url, tt.key)); !strings.Contains(got, tt.want) {
				t.Fatalf("line %q, want it to contain %q", got, tt.want)
			}
		})
	}
}

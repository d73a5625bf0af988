package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRequireBearer(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	h := RequireBearer("s3cret", ok, "/health", "POST /v1/workers/{id}/ready")
	tests := []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/health", "", http.StatusOK},
		{"POST", "/v1/workers/w1/ready", "", http.StatusOK},
		{"GET", "/v1/workers/w1/ready", "", http.StatusUnauthorized}, // only POST is open
		{"GET", "/health/x", "", http.StatusUnauthorized},            // patterns match exactly
		{"GET", "/v1/state", "", http.StatusUnauthorized},
		{"GET", "/v1/state", "wrong", http.StatusUnauthorized},
		{"GET", "/v1/state", "s3cret", http.StatusOK},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, tt.path, nil)
		if tt.token != "" {
			r.Header.Set("Authorization", "Bearer "+tt.token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("%s %s (token %q): %d, want %d", tt.method, tt.path, tt.token, w.Code, tt.want)
		}
	}
}

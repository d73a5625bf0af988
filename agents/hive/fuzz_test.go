package hive

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzPutRequests sends hostile names and bodies to PUT /v1/models/{name}
// and PUT /v1/workers/{id}: no input may crash the hive or make it answer
// 500, and every refusal is the JSON error envelope.
func FuzzPutRequests(f *testing.F) {
	seeds := []struct {
		worker     bool
		name, body string
	}{
		{false, "tiny", `{"source":"synth:tiny"}`},
		{false, "alias", `{"source":"file:///DATA/models/tiny/tiny.gguf"}`},
		{false, "alias", `{"source":"file:///DATA/models/tiny/tiny.gguf","sha256":"0000000000000000000000000000000000000000000000000000000000000000"}`},
		{false, "shadow", `{"source":"file:///etc/shadow.gguf"}`},
		{false, "fifo", `{"source":"file:///dev/stdin.gguf"}`},
		{false, "m", `{"source":"file:///etc/../etc/x.gguf"}`},
		{false, "m", `{"source":"hf:acme/x","file":"../../etc/passwd"}`},
		{false, "m", `{"source":"s3://bucket/x.gguf"}`},
		{false, "m", `{"source":"synth:tiny","sha256":"abc"}`},
		{false, "Tiny", `{"source":"synth:tiny"}`},
		{false, "a_b", `{"source":"synth:tiny","colour":"red"}`},
		{false, "m", `{"source":"synth:tiny\u0000"}`},
		{false, "m", `[`},
		{true, "chat-0", `{"model":"tiny","slots":2,"ctx_size":512}`},
		{true, "chat-0", `{"model":"tiny","backend":"cuda"}`},
		{true, "chat-0", `{"model":"tiny","backend":"metal","device":3}`},
		{true, "chat-0", `{"model":"tiny","drain_timeout":"-1s"}`},
		{true, "chat-0", `{"model":"tiny","load_timeout":"soon","port":80}`},
		{true, "chat-0", `{"model":"../tiny","slots":1e9}`},
		{true, "x;rm -rf /", `{"model":"tiny"}`},
	}
	for _, s := range seeds {
		f.Add(s.worker, s.name, s.body)
	}
	h, _ := newTestHive(f, "exit 0")
	handler := h.Handler()
	f.Fuzz(func(t *testing.T, worker bool, name, body string) {
		if strings.Contains(body, "tinyllama") || strings.Contains(body, "http") {
			t.Skip("a 620 MB synth or a network download is not what this target is about")
		}
		path := "/v1/models/" + url.PathEscape(name)
		if worker {
			path = "/v1/workers/" + url.PathEscape(name) + "?wait=false"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, http.MethodPut, path, strings.NewReader(body))
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusInsufficientStorage && rec.Code != http.StatusBadGateway {
			t.Fatalf("PUT %s %q = %d: %s", path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var env struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Error.Code == "" || env.Error.Message == "" {
				t.Fatalf("PUT %s %q = %d without the error envelope: %s", path, body, rec.Code, rec.Body)
			}
		}
	})
}

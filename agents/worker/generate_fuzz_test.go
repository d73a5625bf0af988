package worker

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rbee-dev/rbee/engine"
	"github.com/rbee-dev/rbee/gguf"
)

var (
	tinyOnce sync.Once
	tinyURL  string
	tinyErr  error
)

// tinyWorker serves the worker's real handler with the tiny synth model
// loaded (2 slots of 32 tokens), once per test binary.
func tinyWorker(t testing.TB) string {
	t.Helper()
	tinyOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rbee-worker-test")
		if err != nil {
			tinyErr = err
			return
		}
		path := filepath.Join(dir, "tiny.gguf")
		if _, tinyErr = gguf.SynthFile(context.Background(), path, "tiny", 1); tinyErr != nil {
			return
		}
		s, err := New(Config{ModelPath: path, Port: MinPort, Slots: 2, CtxSize: 32, Embeddings: true})
		if err != nil {
			tinyErr = err
			return
		}
		eng, err := engine.Load(context.Background(), path, s.engineOptions())
		if err != nil {
			tinyErr = err
			return
		}
		s.eng.Store(eng)
		tinyURL = httptest.NewServer(s.Handler()).URL
	})
	if tinyErr != nil {
		t.Fatal(tinyErr)
	}
	return tinyURL
}

var fuzzPaths = []string{"/v1/inference", "/v1/completions", "/v1/chat/completions", "/v1/embeddings"}

// FuzzGenerate sends bodies to the worker's endpoints with a real model
// loaded, so that whatever validation lets through reaches llama.cpp's
// samplers: a value that aborts them kills the test binary. No answer may be
// a 5xx other than 503 (busy).
func FuzzGenerate(f *testing.F) {
	for i := range fuzzPaths {
		for _, b := range seedBodies {
			f.Add(uint8(i), []byte(b))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		url := tinyWorker(t) + fuzzPaths[int(which)%len(fuzzPaths)]
		resp, err := http.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("POST %s %q: status %d: %s", url, body, resp.StatusCode, out)
		}
	})
}

package modelstore

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/backoff"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/gguf"
)

// TestProvisionSplitModel downloads a model split in three shards from a
// real HTTP server laid out like Hugging Face, the first shard cut halfway
// once so that it resumes, and catalogues all of them.
func TestProvisionSplitModel(t *testing.T) {
	src := t.TempDir()
	p, _ := gguf.LookupPreset("qwen3-tiny")
	paths, err := p.Writer(1).WriteSplit(context.Background(), filepath.Join(src, "q3"), 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gguf.SynthFile(context.Background(), filepath.Join(src, "one.gguf"), "qwen3-tiny", 1); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	asked := map[string]int{}
	cut := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := filepath.Base(r.URL.Path)
		if !strings.HasPrefix(r.URL.Path, "/org/repo/resolve/main/") {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		asked[name]++
		first := cut && r.Method == http.MethodGet && name == filepath.Base(paths[0])
		if first {
			cut = false
		}
		mu.Unlock()
		if first {
			b, _ := os.ReadFile(filepath.Join(src, name))
			w.Header().Set("Content-Length", "999999999")
			w.Write(b[:len(b)/2]) // the connection ends early
			return
		}
		http.ServeFile(w, r, filepath.Join(src, name))
	}))
	defer srv.Close()
	s, err := Open(t.TempDir(), Options{HFEndpoint: srv.URL, Downloader: &Downloader{Retry: backoff.Policy{Base: time.Millisecond}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, err := s.Provision(context.Background(), "q3", hiveapi.ModelSpec{Source: "hf:org/repo", File: filepath.Base(paths[0])}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range paths {
		fi, _ := os.Stat(p)
		total += fi.Size()
	}
	whole, err := gguf.ReadFile(filepath.Join(src, "one.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	if sm := whole.Summary(); m.Parameters != sm.Parameters || m.Metadata.TensorBytes != whole.Metadata().TensorBytes {
		t.Errorf("catalogued %d parameters, %d tensor bytes; the model in one file has %d, %d", m.Parameters, m.Metadata.TensorBytes, sm.Parameters, whole.Metadata().TensorBytes)
	}
	if len(m.Shards) != 3 || m.Size != total || m.Metadata == nil || m.Metadata.Shards != 3 || m.Metadata.KeyLength != 64 {
		t.Fatalf("catalog entry %+v (metadata %+v)", m, m.Metadata)
	}
	for i, sh := range m.Shards {
		if sh.File != filepath.Base(paths[i]) || sh.SHA256 == "" {
			t.Errorf("shard %d: %+v", i, sh)
		}
	}
	if _, ok := s.Get("q3"); !ok {
		t.Fatal("the split model is not present")
	}
	os.Remove(filepath.Join(filepath.Dir(m.Path), m.Shards[2].File))
	if _, ok := s.Get("q3"); ok {
		t.Error("a model missing its third shard is still present")
	}
}

package fit

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/gguf"
	"github.com/rbee-dev/rbee/state"
)

const commit = "0123456789abcdef0123456789abcdef01234567"

func TestStoreKey(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	cases := []struct {
		m    config.Model
		want string
	}{
		{config.Model{Source: "hf:org/repo", File: "m.gguf", Revision: commit}, "hf:org/repo@" + commit + "/m.gguf"},
		{config.Model{Source: "hf:org/repo", File: "m.gguf"}, ""},                   // main moves
		{config.Model{Source: "hf:org/repo", File: "m.gguf", Revision: "v1.0"}, ""}, // a tag may be moved too
		{config.Model{Source: "hf:org/repo", File: "m.gguf", SHA256: sum}, ""},      // the pin is checked after the download, not the key
		{config.Model{Source: "https://example.com/m.gguf", SHA256: sum}, "https://example.com/m.gguf#sha256=" + sum},
		{config.Model{Source: "https://example.com/m.gguf"}, ""},
		{config.Model{Source: "synth:tiny"}, ""},
		{config.Model{Source: "file:///models/m.gguf"}, ""},
	}
	for _, tc := range cases {
		if got := StoreKey(&tc.m); got != tc.want {
			t.Errorf("StoreKey(%+v) = %q, want %q", tc.m, got, tc.want)
		}
	}
}

// hub serves one GGUF file at every resolve URL, as Hugging Face does, with
// Range requests, and records the paths it was asked for.
type hub struct {
	body  []byte
	mu    sync.Mutex
	paths []string
}

func (h *hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.paths = append(h.paths, r.URL.Path)
	h.mu.Unlock()
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(h.body))
}

func (h *hub) asked() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.paths
	h.paths = nil
	return out
}

func TestHeadersKeptInTheState(t *testing.T) {
	ctx := context.Background()
	var b bytes.Buffer
	if _, err := gguf.Synth(ctx, &b, "tiny", 1); err != nil {
		t.Fatal(err)
	}
	h := &hub{body: b.Bytes()}
	srv := httptest.NewServer(h)
	defer srv.Close()
	st, err := state.Open(ctx, filepath.Join(t.TempDir(), ".rbee"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, state.NodeRecord{Name: "n", Connection: "local", InstallDir: "/opt/rbee", HivePort: 9200}); err != nil {
		t.Fatal(err)
	}
	node := &config.Node{Name: "n", Connection: "ssh", Env: map[string]string{"HF_ENDPOINT": srv.URL}}
	locked := func(string) (string, string) { return commit, "" }
	cases := []struct {
		name   string
		locked func(string) (string, string)
		asks   bool   // Range requests go to the hub
		path   string // the revision they ask for
	}{
		{"a locked model is read at its commit", locked, true, "/org/repo/resolve/" + commit + "/tiny.gguf"},
		{"then the state has it, in a new run too", locked, false, ""},
		{"an unlocked branch is read", nil, true, "/org/repo/resolve/main/tiny.gguf"},
		{"and read again in the next run", nil, true, "/org/repo/resolve/main/tiny.gguf"},
	}
	m := &config.Model{Name: "tiny", Source: "hf:org/repo", File: "tiny.gguf"}
	for _, tc := range cases {
		hs := &Headers{Store: st, Locked: tc.locked} // a new run: nothing kept in the process
		meta, err := hs.Metadata(ctx, m, node)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if meta.Vocab != 512 || meta.TensorBytes <= 0 {
			t.Errorf("%s: metadata %+v is not the tiny model's", tc.name, meta)
		}
		asked := h.asked()
		if (len(asked) > 0) != tc.asks || (tc.asks && asked[0] != tc.path) {
			t.Errorf("%s: the hub was asked %q, want requests %v for %s", tc.name, asked, tc.asks, tc.path)
		}
		if _, err := hs.Metadata(ctx, m, node); err != nil || len(h.asked()) != 0 {
			t.Errorf("%s: a second read in the same run asked the hub (%v)", tc.name, err)
		}
	}
}

package fit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/agents/hive/modelstore"
	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/gguf"
)

// headerChunk is what one Range request asks for; maxHeader bounds the
// whole header read (a 256k-token vocabulary is a few MB).
const (
	headerChunk = 1 << 20
	maxHeader   = 64 << 20
)

// Headers reads a model's GGUF header without provisioning it: a synth
// preset is generated only as far as its header, a file of a local node is
// read in place, and an hf: or https source is read with HTTP Range
// requests (a few MB, never the whole file). Results are kept per source,
// revision and file for the life of the value, and in Store across runs.
//
// Store keeps only headers whose key names the file's content for good, so
// that an entry never goes stale:
//   - hf: at a commit: the one the lock file pins (the header is then read at
//     that commit, which is what the hive downloads), else a revision that is
//     itself a 40-digit commit id. A branch or tag the lock does not pin
//     moves, so its header is read again on every run.
//   - https: with a sha256: the lock file's, else the model block's pin.
//   - synth: and file: sources are read on this machine, without a request:
//     they are not stored.
type Headers struct {
	Client *http.Client // nil: http.DefaultClient
	Store  HeaderStore  // nil: nothing is kept across runs
	// Locked gives the commit and sha256 the model lock file pins for a
	// model ("" for what it does not pin); nil: no lock file.
	Locked func(model string) (commit, sha256 string)
	mu     sync.Mutex
	cache  map[string]gguf.Metadata
}

// HeaderStore keeps header summaries across runs: the state does
// (state.Store and etcdstate.Store). ModelHeader returns nil when it has none.
type HeaderStore interface {
	ModelHeader(ctx context.Context, key string) ([]byte, error)
	PutModelHeader(ctx context.Context, key string, summary []byte) error
}

// Metadata returns the header of model m as seen from node n.
func (h *Headers) Metadata(ctx context.Context, m *config.Model, n *config.Node) (gguf.Metadata, error) {
	m = h.pinned(m)
	key := m.Source + "\x00" + m.Revision + "\x00" + m.File + "\x00" + m.SHA256
	h.mu.Lock()
	meta, ok := h.cache[key]
	h.mu.Unlock()
	if ok {
		return meta, nil
	}
	stored := StoreKey(m)
	if meta, ok := h.load(ctx, stored); ok {
		h.keep(key, meta)
		return meta, nil
	}
	meta, err := h.read(ctx, m, n)
	if err != nil {
		return meta, err
	}
	h.keep(key, meta)
	if stored != "" && h.Store != nil {
		if b, err := json.Marshal(meta); err == nil {
			// A header not kept is read again next time: not worth failing the plan.
			_ = h.Store.PutModelHeader(ctx, stored, b)
		}
	}
	return meta, nil
}

// pinned is m at what the lock file pins: its commit and sha256.
func (h *Headers) pinned(m *config.Model) *config.Model {
	if h.Locked == nil {
		return m
	}
	commit, sum := h.Locked(m.Name)
	if commit == "" && sum == "" {
		return m
	}
	c := *m
	if commit != "" && strings.HasPrefix(m.Source, "hf:") {
		c.Revision = commit
	}
	if sum != "" {
		c.SHA256 = sum
	}
	return &c
}

// StoreKey is the key a header of m is stored under across runs, or ""
// when m's source can change under the same name (see Headers).
func StoreKey(m *config.Model) string {
	ref, err := modelstore.ParseRef(hiveapi.ModelSpec{Source: m.Source, File: m.File, Revision: m.Revision, SHA256: m.SHA256})
	if err != nil {
		return ""
	}
	switch {
	case ref.Provider == modelstore.ProviderHF && modelstore.IsCommit(ref.Revision):
		return "hf:" + ref.Repo + "@" + ref.Revision + "/" + ref.File
	case ref.Provider == modelstore.ProviderHTTPS && ref.SHA256 != "":
		return ref.URL + "#sha256=" + ref.SHA256
	}
	return ""
}

func (h *Headers) load(ctx context.Context, key string) (gguf.Metadata, bool) {
	if key == "" || h.Store == nil {
		return gguf.Metadata{}, false
	}
	b, err := h.Store.ModelHeader(ctx, key)
	var meta gguf.Metadata
	if err != nil || b == nil || json.Unmarshal(b, &meta) != nil || meta.TensorBytes <= 0 {
		return gguf.Metadata{}, false // read it again
	}
	return meta, true
}

func (h *Headers) keep(key string, meta gguf.Metadata) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cache == nil {
		h.cache = map[string]gguf.Metadata{}
	}
	h.cache[key] = meta
}

func (h *Headers) read(ctx context.Context, m *config.Model, n *config.Node) (gguf.Metadata, error) {
	ref, err := modelstore.ParseRef(hiveapi.ModelSpec{Source: m.Source, File: m.File, Revision: m.Revision})
	if err != nil {
		return gguf.Metadata{}, err
	}
	switch ref.Provider {
	case modelstore.ProviderSynth:
		return synthMetadata(ctx, ref.Preset)
	case modelstore.ProviderFile:
		if n == nil || n.Connection != "local" {
			return gguf.Metadata{}, fmt.Errorf("the file is on the node; its hive reads it")
		}
		return gguf.ReadModelMetadata(ref.Path)
	}
	url, token := ref.URL, ""
	if ref.Provider == modelstore.ProviderHF {
		url = ref.HFURL(envOf(n, "HF_ENDPOINT", modelstore.DefaultHFEndpoint))
		token = envOf(n, "HF_TOKEN", "")
	}
	f, err := gguf.Read(&rangeReader{ctx: ctx, client: h.client(), url: url, token: token})
	if err != nil {
		return gguf.Metadata{}, fmt.Errorf("read the GGUF header of %s: %w", url, err)
	}
	meta := f.Metadata()
	if meta.Shards > 1 {
		// The first shard's header has the metadata, not the other shards'
		// tensors: scale the weights by the shards' count as an estimate.
		meta.TensorBytes *= int64(meta.Shards)
		meta.DecodeBytes *= int64(meta.Shards)
	}
	return meta, nil
}

func (h *Headers) client() *http.Client {
	if h.Client != nil {
		return h.Client
	}
	return http.DefaultClient
}

// envOf is the node's environment value of key, else this process's, else def.
func envOf(n *config.Node, key, def string) string {
	if n != nil && n.Env[key] != "" {
		return n.Env[key]
	}
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// synthMetadata generates a preset until its header is parsed, then stops.
func synthMetadata(ctx context.Context, preset string) (gguf.Metadata, error) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _, err := gguf.Synth(ctx, pw, preset, modelstore.SynthSeed); pw.CloseWithError(err) }()
	f, err := gguf.Read(pr)
	pr.Close()
	if err != nil {
		return gguf.Metadata{}, err
	}
	return f.Metadata(), nil
}

// rangeReader reads a URL from the start in chunks, one Range request each.
type rangeReader struct {
	ctx    context.Context
	client *http.Client
	url    string
	token  string
	off    int64
	buf    []byte
	eof    bool
}

func (r *rangeReader) Read(p []byte) (int, error) {
	if len(r.buf) == 0 {
		if r.eof {
			return 0, io.EOF
		}
		if r.off >= maxHeader {
			return 0, fmt.Errorf("the header is larger than %d MiB", maxHeader>>20)
		}
		if err := r.fetch(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *rangeReader) fetch() error {
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", r.off, r.off+headerChunk-1))
	req.Header.Set("User-Agent", "rbee-plan")
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent:
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		r.eof = true
		return nil
	case resp.StatusCode == http.StatusOK:
		return fmt.Errorf("the server does not answer Range requests (HTTP 200), and the whole file is not fetched to plan")
	default:
		return fmt.Errorf("HTTP %d %s", resp.StatusCode, strings.TrimSpace(http.StatusText(resp.StatusCode)))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, headerChunk))
	if err != nil {
		return err
	}
	r.off += int64(len(b))
	r.buf = b
	if len(b) < headerChunk {
		r.eof = true
	}
	return nil
}

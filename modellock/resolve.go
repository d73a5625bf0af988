package modellock

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/agents/hive/modelstore"
	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/gguf"
)

// DefaultEndpoint is the Hugging Face endpoint when HF_ENDPOINT is not set.
const DefaultEndpoint = "https://huggingface.co"

// Resolver finds what a model block names right now: it asks the origin
// (HEAD for the commit, size and linked sha256; the whole file streamed
// through sha256 only when the origin gives no checksum) and generates
// synth: models into a hashing writer, never to disk.
type Resolver struct {
	Downloader *modelstore.Downloader // nil: one with the default client and timeouts
	Endpoint   string                 // Hugging Face endpoint; "" means HF_ENDPOINT, else DefaultEndpoint
	Token      string                 // HF_TOKEN, sent to the Hugging Face endpoint only
	Generator  string                 // recorded as a synth: model's generator (the rbee version)
	// Hashed counts the files that had to be streamed to learn their sha256.
	Hashed int
}

// NewResolver is a resolver that reads HF_ENDPOINT and HF_TOKEN from the
// environment.
func NewResolver(generator string) *Resolver {
	return &Resolver{Endpoint: os.Getenv("HF_ENDPOINT"), Token: os.Getenv("HF_TOKEN"), Generator: generator}
}

func (r *Resolver) dl() *modelstore.Downloader {
	if r.Downloader == nil {
		r.Downloader = &modelstore.Downloader{}
	}
	return r.Downloader
}

func (r *Resolver) endpoint() string {
	if r.Endpoint != "" {
		return r.Endpoint
	}
	return DefaultEndpoint
}

// Resolve returns the lock entry of model m as its origin serves it now.
func (r *Resolver) Resolve(ctx context.Context, m *config.Model) (Entry, error) {
	ref, err := modelstore.ParseRef(hiveapi.ModelSpec{Source: m.Source, File: m.File, Revision: m.Revision, SHA256: m.SHA256})
	if err != nil {
		return Entry{}, fmt.Errorf("model %q: %w", m.Name, err)
	}
	e := Entry{Name: m.Name, Source: m.Source}
	switch ref.Provider {
	case modelstore.ProviderHF:
		err = r.resolveHF(ctx, &e, ref)
	case modelstore.ProviderHTTPS:
		var f File
		f, err = r.file(ctx, modelstore.Fetch{URL: ref.URL, Describe: ref.URL}, ref.File, nil)
		e.Files = []File{f}
	case modelstore.ProviderSynth:
		err = r.resolveSynth(ctx, &e, ref)
	case modelstore.ProviderFile:
		// The operator's own file on the node: nothing to resolve here.
	}
	if err != nil {
		return Entry{}, fmt.Errorf("model %q: %w", m.Name, err)
	}
	if p := e.Primary(); p != nil && ref.SHA256 != "" && p.SHA256 != ref.SHA256 {
		return Entry{}, fmt.Errorf("model %q: %s resolves to sha256 %s but the model block pins %s; fix or remove the sha256 attribute", m.Name, describe(e), p.SHA256, ref.SHA256)
	}
	return e, nil
}

func (r *Resolver) resolveSynth(ctx context.Context, e *Entry, ref modelstore.Ref) error {
	h := sha256.New()
	n, err := gguf.Synth(ctx, h, ref.Preset, modelstore.SynthSeed)
	if err != nil {
		return fmt.Errorf("generate %s: %w", ref, err)
	}
	e.Generator, e.Seed = r.Generator, modelstore.SynthSeed
	e.Files = []File{{Name: ref.Preset + ".gguf", Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}}
	return nil
}

// resolveHF pins the revision to a commit with a HEAD of the block's file,
// then resolves every shard at that commit.
func (r *Resolver) resolveHF(ctx context.Context, e *Entry, ref modelstore.Ref) error {
	e.Revision = ref.Revision
	fetch := func(rf modelstore.Ref) modelstore.Fetch {
		return modelstore.Fetch{URL: rf.HFURL(r.endpoint()), Token: r.Token,
			Describe: fmt.Sprintf("%s file %s (revision %s)", rf.String(), rf.File, rf.Revision)}
	}
	first := fetch(ref)
	rem, err := r.dl().Head(ctx, first)
	if err != nil {
		return err
	}
	e.Commit = rem.Commit
	if !modelstore.IsCommit(e.Commit) {
		if e.Commit, err = r.commitFromAPI(ctx, ref); err != nil {
			return err
		}
	}
	shards := Shards(ref.File)
	if len(shards) > MaxShards {
		return fmt.Errorf("%s file %s: a model of %d shards is more than the %d rbee locks", ref, ref.File, len(shards), MaxShards)
	}
	for _, name := range shards {
		at := ref
		at.File, at.Revision = name, e.Commit
		var hint *modelstore.Remote
		if name == ref.File && rem.Commit == e.Commit {
			hint = &rem // the first HEAD already answered for this commit
		}
		f, err := r.file(ctx, fetch(at), name, hint)
		if err != nil {
			return err
		}
		e.Files = append(e.Files, f)
	}
	return nil
}

// file resolves one file: the HEAD's linked sha256 and size when the origin
// gives them (hint, if not nil, is that HEAD's answer), else the sha256 of
// the streamed bytes.
func (r *Resolver) file(ctx context.Context, f modelstore.Fetch, name string, hint *modelstore.Remote) (File, error) {
	if hint == nil {
		rem, err := r.dl().Head(ctx, f)
		if err != nil {
			return File{}, err
		}
		hint = &rem
	}
	rem := *hint
	if rem.SHA256 != "" && rem.Size >= 0 {
		return File{Name: name, Size: rem.Size, SHA256: rem.SHA256}, nil
	}
	r.Hashed++
	sum, size, err := r.dl().Hash(ctx, f)
	if err != nil {
		return File{}, err
	}
	return File{Name: name, Size: size, SHA256: sum}, nil
}

// commitFromAPI asks the Hugging Face API which commit a revision is, for a
// server whose resolve answer carries no X-Repo-Commit.
func (r *Resolver) commitFromAPI(ctx context.Context, ref modelstore.Ref) (string, error) {
	if modelstore.IsCommit(ref.Revision) {
		return ref.Revision, nil
	}
	u := fmt.Sprintf("%s/api/models/%s/revision/%s", trimSlash(r.endpoint()), ref.Repo, url.PathEscape(ref.Revision))
	ctx, cancel := context.WithTimeout(ctx, modelstore.DefaultStallTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("ask %s which commit revision %s is: %w", u, ref.Revision, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s file %s: the resolve answer named no commit (X-Repo-Commit) and %s answered HTTP %d", ref, ref.File, u, resp.StatusCode)
	}
	var info struct {
		SHA string `json:"sha"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&info); err != nil || !modelstore.IsCommit(info.SHA) {
		return "", fmt.Errorf("%s: %s did not name the commit of revision %s", ref, u, ref.Revision)
	}
	return info.SHA, nil
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

// MaxShards bounds the files of one split model.
const MaxShards = 256

var shardRe = regexp.MustCompile(`^(.*)-00001-of-(\d{5})\.gguf$`)

// Shards lists the files of a split GGUF model named by its first shard
// (NAME-00001-of-0000N.gguf, as llama.cpp's gguf-split writes them); any
// other file name is a model of one file.
func Shards(file string) []string {
	m := shardRe.FindStringSubmatch(file)
	if m == nil {
		return []string{file}
	}
	n, _ := strconv.Atoi(m[2])
	if n < 1 {
		return []string{file}
	}
	out := make([]string, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Sprintf("%s-%05d-of-%s.gguf", m[1], i, m[2]))
	}
	return out
}

// describe names what an entry locks, for messages.
func describe(e Entry) string {
	s := e.Source
	if p := e.Primary(); p != nil && e.Revision != "" {
		s += " file " + p.Name + " @" + e.Revision
	}
	return s
}

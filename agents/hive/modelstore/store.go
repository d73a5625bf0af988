// Package modelstore is the hive's model catalog: it parses model references
// (hf:, https://, file://, synth:), downloads them with resume, retries and
// sha256 verification, reads their GGUF metadata, and persists the catalog
// in the hive's data dir so it survives restarts.
package modelstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/digest"
	"github.com/rbee-dev/rbee/gguf"
)

// DefaultHFEndpoint is where hf: references are resolved unless HF_ENDPOINT says otherwise.
const DefaultHFEndpoint = "https://huggingface.co"

// SynthSeed is the seed synth: models are generated with.
const SynthSeed = 1

// catalogFile is the catalog's file name inside the data dir.
const catalogFile = "catalog.json"

// Options configure a Store.
type Options struct {
	Downloader *Downloader // nil: defaults
	HFEndpoint string      // "": DefaultHFEndpoint
	HFToken    string      // sent as a bearer token to HFEndpoint only
	Log        *slog.Logger
}

// Store is the catalog of one hive. It is safe for concurrent use.
type Store struct {
	dir        string // data dir
	dl         *Downloader
	hfEndpoint string
	hfToken    string
	log        *slog.Logger

	ctx    context.Context // downloads outlive the requests that start them
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	models   map[string]hiveapi.Model
	inflight map[string]*job
}

// job is one provisioning in progress, shared by every request for the same model.
type job struct {
	ref  Ref
	done chan struct{}
	res  hiveapi.Model
	err  error

	mu   sync.Mutex
	subs map[int]func(hiveapi.Progress)
	next int
	last *hiveapi.Progress
}

func (j *job) subscribe(fn func(hiveapi.Progress)) (cancel func()) {
	if fn == nil {
		return func() {}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	id := j.next
	j.next++
	j.subs[id] = fn
	if j.last != nil {
		fn(*j.last)
	}
	return func() {
		j.mu.Lock()
		delete(j.subs, id)
		j.mu.Unlock()
	}
}

func (j *job) publish(p hiveapi.Progress) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.last = &p
	for _, fn := range j.subs {
		fn(p)
	}
}

// Open loads the catalog in dir (creating dir if needed).
func Open(dir string, opts Options) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "models"), 0o755); err != nil {
		return nil, fmt.Errorf("create the model folder in %s: %w", dir, err)
	}
	s := &Store{
		dir:        dir,
		dl:         opts.Downloader,
		hfEndpoint: opts.HFEndpoint,
		hfToken:    opts.HFToken,
		log:        opts.Log,
		models:     map[string]hiveapi.Model{},
		inflight:   map[string]*job{},
	}
	if s.dl == nil {
		s.dl = &Downloader{}
	}
	if s.hfEndpoint == "" {
		s.hfEndpoint = DefaultHFEndpoint
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.dl.Log == nil {
		s.dl.Log = s.log
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	b, err := os.ReadFile(filepath.Join(dir, catalogFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read the model catalog: %w", err)
	default:
		var c struct {
			Models []hiveapi.Model `json:"models"`
		}
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("the model catalog %s is corrupt (%v); move it away to start with an empty catalog", filepath.Join(dir, catalogFile), err)
		}
		for _, m := range c.Models {
			s.models[m.Name] = m
		}
	}
	return s, nil
}

// Close cancels downloads in progress and waits for them to stop.
func (s *Store) Close() {
	s.cancel()
	s.wg.Wait()
}

// Dir is the folder model files are stored in.
func (s *Store) Dir() string { return filepath.Join(s.dir, "models") }

// present reports whether the entry's file is on disk with the catalogued size.
func present(m hiveapi.Model) bool {
	fi, err := os.Stat(m.Path)
	return err == nil && fi.Mode().IsRegular() && fi.Size() == m.Size
}

// Get returns the catalog entry of name if its file is present.
func (s *Store) Get(name string) (hiveapi.Model, bool) {
	s.mu.Lock()
	m, ok := s.models[name]
	s.mu.Unlock()
	if !ok || !present(m) {
		return hiveapi.Model{}, false
	}
	return m, true
}

// List returns the catalogued models whose files are present, by name. An
// entry whose file was deleted behind the hive's back is left out, so the
// drift is visible to whoever reads the hive's state.
func (s *Store) List() []hiveapi.Model {
	s.mu.Lock()
	all := make([]hiveapi.Model, 0, len(s.models))
	for _, m := range s.models {
		all = append(all, m)
	}
	s.mu.Unlock()
	out := all[:0]
	for _, m := range all {
		if present(m) {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Provision makes the model name present as spec describes, and returns its
// catalog entry. A present model from the same source (and the pinned sha256,
// if any) is returned at once, without any download. Concurrent calls for the
// same model share one download; progress, if not nil, sees its events.
// Errors are *api.Error values with HTTP statuses.
func (s *Store) Provision(ctx context.Context, name string, spec hiveapi.ModelSpec, progress func(hiveapi.Progress)) (hiveapi.Model, error) {
	if err := hiveapi.ValidName("model name", name); err != nil {
		return hiveapi.Model{}, api.Errorf(http.StatusBadRequest, "INVALID_NAME", "%v", err)
	}
	ref, err := ParseRef(spec)
	if err != nil {
		return hiveapi.Model{}, api.Errorf(http.StatusBadRequest, "INVALID_REF", "%v", err).
			WithDetails(map[string]any{"allowed": AllowedForms})
	}
	s.mu.Lock()
	if m, ok := s.models[name]; ok && s.matches(m, ref) && present(m) {
		s.mu.Unlock()
		return m, nil
	}
	j, ok := s.inflight[name]
	if ok && (!j.ref.Same(ref) || j.ref.SHA256 != ref.SHA256) {
		s.mu.Unlock()
		return hiveapi.Model{}, api.Errorf(http.StatusConflict, "PROVISION_CONFLICT",
			"model %q is being provisioned from %s right now; wait for it to finish before changing its source", name, j.ref)
	}
	if !ok {
		j = &job{ref: ref, done: make(chan struct{}), subs: map[int]func(hiveapi.Progress){}}
		s.inflight[name] = j
		s.wg.Add(1)
		go s.run(name, j)
	}
	s.mu.Unlock()

	unsub := j.subscribe(progress)
	defer unsub()
	select {
	case <-j.done:
		return j.res, j.err
	case <-ctx.Done():
		return hiveapi.Model{}, ctx.Err()
	}
}

// matches reports whether the catalog entry m satisfies ref.
func (s *Store) matches(m hiveapi.Model, ref Ref) bool {
	if m.Source != ref.String() || m.Provider != ref.Provider {
		return false
	}
	if ref.Provider == ProviderHF && (m.File != ref.File || m.Revision != ref.Revision) {
		return false
	}
	if ref.Provider == ProviderHTTPS && m.File != ref.File {
		return false
	}
	return ref.SHA256 == "" || ref.SHA256 == m.SHA256
}

func (s *Store) run(name string, j *job) {
	defer s.wg.Done()
	m, err := s.provision(s.ctx, name, j.ref, j.publish)
	if err == nil {
		s.mu.Lock()
		old, hadOld := s.models[name]
		s.models[name] = m
		err = s.saveLocked()
		s.mu.Unlock()
		if err == nil && hadOld && old.Path != m.Path {
			s.removeOwned(old.Path)
		}
	}
	if err != nil {
		s.log.Error("model provisioning failed", "model", name, "source", j.ref.String(), "err", err)
	} else {
		s.log.Info("model ready", "model", name, "source", j.ref.String(), "size", m.Size, "sha256", m.SHA256)
	}
	s.mu.Lock()
	delete(s.inflight, name)
	s.mu.Unlock()
	j.res, j.err = m, err
	close(j.done)
}

// removeIfEmpty removes a model folder that a failed provisioning left empty,
// so no trace of a model that was never catalogued stays on the node. A folder
// that still holds a file (an earlier version, a partial download) is kept.
func removeIfEmpty(folder string) { _ = os.Remove(folder) }

// provision fetches or generates the file and builds its catalog entry.
func (s *Store) provision(ctx context.Context, name string, ref Ref, progress func(hiveapi.Progress)) (hiveapi.Model, error) {
	folder := filepath.Join(s.Dir(), name)
	var path, sum string
	var size int64
	switch ref.Provider {
	case ProviderHF, ProviderHTTPS:
		if err := os.MkdirAll(folder, 0o755); err != nil {
			return hiveapi.Model{}, err
		}
		f := Fetch{Dest: filepath.Join(folder, filepath.Base(ref.File)), SHA256: ref.SHA256, Progress: progress}
		if ref.Provider == ProviderHF {
			f.URL = ref.HFURL(s.hfEndpoint)
			f.Token = s.hfToken
			f.Describe = fmt.Sprintf("%s file %s (revision %s)", ref.String(), ref.File, ref.Revision)
		} else {
			f.URL = ref.URL
			f.Describe = ref.URL
		}
		res, err := s.dl.Get(ctx, f)
		if err != nil {
			removeIfEmpty(folder)
			return hiveapi.Model{}, err
		}
		path, sum, size = res.Path, res.SHA256, res.Size
	case ProviderSynth:
		if err := os.MkdirAll(folder, 0o755); err != nil {
			return hiveapi.Model{}, err
		}
		res, err := gguf.SynthFile(ctx, filepath.Join(folder, ref.Preset+".gguf"), ref.Preset, SynthSeed)
		if err != nil {
			return hiveapi.Model{}, api.Errorf(http.StatusInternalServerError, "SYNTH_FAILED", "generate %s: %v", ref, err)
		}
		if progress != nil {
			progress(hiveapi.Progress{Bytes: res.Size, Total: res.Size})
		}
		path, sum, size = res.Path, res.SHA256, res.Size
	case ProviderFile:
		var err error
		sum, size, err = digest.File(ref.Path)
		if err != nil {
			return hiveapi.Model{}, api.Errorf(http.StatusNotFound, "MODEL_NOT_FOUND", "model not found: cannot read %s on this node: %v", ref.Path, err)
		}
		path = ref.Path
		if progress != nil {
			progress(hiveapi.Progress{Bytes: size, Total: size})
		}
	}
	if ref.SHA256 != "" && sum != ref.SHA256 {
		s.removeOwned(path)
		removeIfEmpty(folder)
		return hiveapi.Model{}, api.Errorf(http.StatusBadGateway, "CHECKSUM_MISMATCH",
			"%s has sha256 %s but the pin says %s; it is not catalogued", ref, sum, ref.SHA256).
			WithDetails(map[string]any{"expected": ref.SHA256, "actual": sum})
	}
	gf, err := gguf.ReadFile(path)
	if err != nil {
		s.removeOwned(path)
		removeIfEmpty(folder)
		return hiveapi.Model{}, api.Errorf(http.StatusUnprocessableEntity, "INVALID_MODEL", "%s is not a usable GGUF model: %v", ref, err)
	}
	sm := gf.Summary()
	return hiveapi.Model{
		Name:          name,
		Source:        ref.String(),
		Provider:      ref.Provider,
		File:          ref.File,
		Revision:      ref.Revision,
		Path:          path,
		Size:          size,
		SHA256:        sum,
		Architecture:  sm.Architecture,
		Parameters:    sm.Parameters,
		Quantization:  sm.Quantization,
		ContextLength: sm.ContextLength,
		ProvisionedAt: time.Now().UTC().Truncate(time.Second),
	}, nil
}

// removeOwned deletes path if it lies inside the store's model folder (a
// file:// model is the user's file and is never deleted).
func (s *Store) removeOwned(path string) {
	rel, err := filepath.Rel(s.Dir(), path)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return
	}
	os.Remove(path)
	os.Remove(filepath.Dir(path)) // the per-model folder, if now empty
}

// Delete removes name from the catalog and deletes its file if the store owns it.
func (s *Store) Delete(name string) error {
	s.mu.Lock()
	m, ok := s.models[name]
	if !ok {
		s.mu.Unlock()
		return api.Errorf(http.StatusNotFound, "MODEL_NOT_FOUND", "model %q is not in this hive's catalog", name)
	}
	if _, busy := s.inflight[name]; busy {
		s.mu.Unlock()
		return api.Errorf(http.StatusConflict, "PROVISION_IN_PROGRESS", "model %q is being provisioned; delete it when that finishes", name)
	}
	delete(s.models, name)
	err := s.saveLocked()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.removeOwned(m.Path)
	return nil
}

// saveLocked writes the catalog atomically; s.mu must be held.
func (s *Store) saveLocked() error {
	c := struct {
		Models []hiveapi.Model `json:"models"`
	}{Models: make([]hiveapi.Model, 0, len(s.models))}
	for _, m := range s.models {
		c.Models = append(c.Models, m)
	}
	sort.Slice(c.Models, func(i, j int) bool { return c.Models[i].Name < c.Models[j].Name })
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(s.dir, catalogFile), b, 0o644)
}

// WriteFileAtomic writes data to path through a synced temporary file in the
// same folder and a rename, so readers see the old or the new content only.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

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
	"sync"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/api"
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
	// FileRoots, when not empty, are the only folders file:// models may be
	// read from; empty allows any regular .gguf file the hive can read.
	FileRoots []string
	// CloseWait bounds how long Close waits for provisioning to stop; 0: DefaultCloseWait.
	CloseWait time.Duration
}

// DefaultCloseWait is how long Close waits for provisioning in progress.
const DefaultCloseWait = 5 * time.Second

// Store is the catalog of one hive. It is safe for concurrent use.
type Store struct {
	dir        string // data dir
	dl         *Downloader
	hfEndpoint string
	hfToken    string
	log        *slog.Logger
	fileRoots  []string
	closeWait  time.Duration

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
		fileRoots:  cleanRoots(opts.FileRoots),
		closeWait:  opts.CloseWait,
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
	if s.closeWait <= 0 {
		s.closeWait = DefaultCloseWait
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

// Close cancels provisioning in progress and waits for it to stop, at most
// the close wait: a step that ignores cancellation (a read stuck in the
// kernel) is abandoned with a warning rather than holding the hive up.
func (s *Store) Close() {
	s.cancel()
	stopped := make(chan struct{})
	go func() { s.wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(s.closeWait):
		s.mu.Lock()
		names := make([]string, 0, len(s.inflight))
		for n := range s.inflight {
			names = append(names, n)
		}
		s.mu.Unlock()
		sort.Strings(names)
		s.log.Warn("provisioning did not stop in time; abandoning it", "models", names, "waited", s.closeWait)
	}
}

// Downloads returns the running download totals.
func (s *Store) Downloads() *DownloadStats { return &s.dl.Stats }

// Dir is the folder model files are stored in.
func (s *Store) Dir() string { return filepath.Join(s.dir, "models") }

// present reports whether the entry's file is on disk with the catalogued
// size. A file:// model must still be a regular file itself: one replaced by
// a symbolic link is gone.
func present(m hiveapi.Model) bool {
	stat := os.Stat
	if m.Provider == ProviderFile {
		stat = os.Lstat
	}
	if len(m.Shards) > 0 {
		return shardsPresent(m, stat)
	}
	fi, err := stat(m.Path)
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
		err = s.record(m)
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

// record catalogues m, replacing (and deleting the file of) an older entry
// of the same name. If the catalog cannot be written, the old entry stays
// and m's file is deleted when the store made it: nothing uncatalogued is
// left on the node. A full disk is 507 INSUFFICIENT_DISK.
func (s *Store) record(m hiveapi.Model) error {
	s.mu.Lock()
	old, hadOld := s.models[m.Name]
	s.models[m.Name] = m
	err := s.saveLocked()
	if err != nil {
		if hadOld {
			s.models[m.Name] = old
		} else {
			delete(s.models, m.Name)
		}
	}
	s.mu.Unlock()
	switch {
	case err != nil:
		if !hadOld || old.Path != m.Path {
			s.removeOwned(m)
		}
		if isNoSpace(err) {
			free, _ := s.dl.free(s.dir)
			return insufficientDisk("the model catalog", s.dir, 0, free)
		}
		return fmt.Errorf("record model %q in the catalog: %w", m.Name, err)
	case hadOld && old.Path != m.Path:
		s.removeOwned(old)
	}
	return nil
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
	s.removeOwned(m)
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

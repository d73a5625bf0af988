package modelstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/gguf"
)

// fetched is a model file in place on the node, before its GGUF is read.
type fetched struct {
	path  string
	sum   string
	size  int64
	owned bool // the store created the file (and may delete it)
}

// provision fetches or generates the file and builds its catalog entry. On
// failure nothing the provisioning created stays behind except a resumable
// *.partial download; a file:// source is never touched.
func (s *Store) provision(ctx context.Context, name string, ref Ref, progress func(hiveapi.Progress)) (hiveapi.Model, error) {
	folder := filepath.Join(s.Dir(), name)
	var got fetched
	var shards []hiveapi.Shard
	var err error
	split := shardNames(ref.File)
	if ref.Provider == ProviderFile {
		split = shardNames(filepath.Base(ref.Path))
	}
	switch {
	case split != nil && (ref.Provider == ProviderHF || ref.Provider == ProviderHTTPS):
		got, shards, err = s.downloadShards(ctx, folder, ref, split, progress)
	case split != nil && ref.Provider == ProviderFile:
		got, shards, err = s.localShards(ref, split, progress)
	case ref.Provider == ProviderHF || ref.Provider == ProviderHTTPS:
		got, err = s.download(ctx, folder, ref, progress)
	case ref.Provider == ProviderSynth:
		got, err = s.synth(ctx, folder, ref, progress)
	case ref.Provider == ProviderFile:
		got, err = s.local(ref, progress)
	default:
		err = fmt.Errorf("unknown provider %q", ref.Provider)
	}
	if err != nil {
		removeIfEmpty(folder)
		return hiveapi.Model{}, err
	}
	discard := func() {
		s.mu.Lock()
		cur, ok := s.models[name]
		s.mu.Unlock()
		// A file the catalogued entry still uses stays (a synth regenerated
		// in place with the same bytes, under a wrong pin).
		if got.owned && !(ok && cur.Path == got.path) {
			s.removeFile(name, got.path)
			s.removeShards(name, hiveapi.Model{Path: got.path, Shards: shards})
		}
	}
	if ref.SHA256 != "" && got.sum != ref.SHA256 {
		discard()
		return hiveapi.Model{}, api.Errorf(http.StatusBadGateway, "CHECKSUM_MISMATCH",
			"%s has sha256 %s but the pin says %s; it is not catalogued", ref, got.sum, ref.SHA256).
			WithDetails(map[string]any{"expected": ref.SHA256, "actual": got.sum})
	}
	files, err := gguf.ReadSplit(got.path)
	if err != nil {
		discard()
		return hiveapi.Model{}, api.Errorf(http.StatusUnprocessableEntity, "INVALID_MODEL", "%s is not a usable GGUF model: %s", ref, ReadErrorText(err))
	}
	gf := gguf.Merge(files)
	sm, meta := gf.Summary(), gf.Metadata()
	return hiveapi.Model{
		Name:          name,
		Source:        ref.String(),
		Provider:      ref.Provider,
		File:          ref.File,
		Revision:      ref.Revision,
		Path:          got.path,
		Size:          got.size,
		SHA256:        got.sum,
		Architecture:  sm.Architecture,
		Parameters:    sm.Parameters,
		Quantization:  sm.Quantization,
		ContextLength: sm.ContextLength,
		ProvisionedAt: time.Now().UTC().Truncate(time.Second),
		Metadata:      &meta,
		Shards:        shards,
	}, nil
}

func (s *Store) download(ctx context.Context, folder string, ref Ref, progress func(hiveapi.Progress)) (fetched, error) {
	if err := os.MkdirAll(folder, 0o755); err != nil {
		return fetched{}, s.writeErr(folder, ref.String(), err)
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
		return fetched{}, err
	}
	return fetched{path: res.Path, sum: res.SHA256, size: res.Size, owned: true}, nil
}

// synthSizes caches the size of each synth preset (seeded with SynthSeed).
var synthSizes sync.Map

// synthSize is the exact size of the preset's file, found by generating it
// into a counter once per process (the generator runs at GB/s).
func synthSize(ctx context.Context, preset string) (int64, error) {
	if n, ok := synthSizes.Load(preset); ok {
		return n.(int64), nil
	}
	n, err := gguf.Synth(ctx, io.Discard, preset, SynthSeed)
	if err != nil {
		return 0, err
	}
	synthSizes.Store(preset, n)
	return n, nil
}

func (s *Store) synth(ctx context.Context, folder string, ref Ref, progress func(hiveapi.Progress)) (fetched, error) {
	size, err := synthSize(ctx, ref.Preset)
	if err != nil {
		return fetched{}, api.Errorf(http.StatusInternalServerError, "SYNTH_FAILED", "generate %s: %v", ref, err)
	}
	if free, err := s.dl.free(s.Dir()); err == nil && size > free {
		return fetched{}, insufficientDisk(ref.String(), s.Dir(), size, free)
	}
	if err := os.MkdirAll(folder, 0o755); err != nil {
		return fetched{}, s.writeErr(folder, ref.String(), err)
	}
	res, err := gguf.SynthFile(ctx, filepath.Join(folder, ref.Preset+".gguf"), ref.Preset, SynthSeed)
	if err != nil {
		if isNoSpace(err) {
			free, _ := s.dl.free(folder)
			return fetched{}, insufficientDisk(ref.String(), folder, size, free)
		}
		if ctx.Err() != nil {
			return fetched{}, ctx.Err()
		}
		return fetched{}, api.Errorf(http.StatusInternalServerError, "SYNTH_FAILED", "generate %s: %v", ref, err)
	}
	if progress != nil {
		progress(hiveapi.Progress{Bytes: res.Size, Total: res.Size})
	}
	return fetched{path: res.Path, sum: res.SHA256, size: res.Size, owned: true}, nil
}

func (s *Store) local(ref Ref, progress func(hiveapi.Progress)) (fetched, error) {
	sum, size, err := hashLocal(ref.Path, s.fileRoots)
	if err != nil {
		return fetched{}, err
	}
	if progress != nil {
		progress(hiveapi.Progress{Bytes: size, Total: size})
	}
	return fetched{path: ref.Path, sum: sum, size: size}, nil
}

// writeErr reports a failure to create something in the model folder; a
// full disk is a 507 like any other.
func (s *Store) writeErr(folder, what string, err error) error {
	if isNoSpace(err) {
		free, _ := s.dl.free(s.Dir())
		return insufficientDisk(what, s.Dir(), 0, free)
	}
	return fmt.Errorf("create the model folder %s: %w", folder, err)
}

// ReadErrorText is the text of an error from reading a GGUF file, safe to
// show to an API client: a file that is not GGUF at all is named as such,
// never with its first bytes (it may be anything the hive can read).
func ReadErrorText(err error) string {
	if errors.Is(err, gguf.ErrNotGGUF) {
		return "it does not start with the \"GGUF\" magic bytes"
	}
	return err.Error()
}

// removeIfEmpty removes a model folder that a failed provisioning left empty,
// so no trace of a model that was never catalogued stays on the node. A folder
// that still holds a file (an earlier version, a partial download) is kept.
func removeIfEmpty(folder string) { _ = os.Remove(folder) }

// removeOwned deletes the file of catalog entry m if the store created it:
// never a file:// model (the operator's file, wherever it lies, even inside
// another model's folder).
func (s *Store) removeOwned(m hiveapi.Model) {
	if m.Provider == ProviderFile {
		return
	}
	s.removeFile(m.Name, m.Path)
	s.removeShards(m.Name, m)
}

// removeFile deletes path if it lies directly in name's own folder, and the
// folder if it is then empty; anything else is left alone.
func (s *Store) removeFile(name, path string) {
	folder := filepath.Join(s.Dir(), name)
	if filepath.Dir(filepath.Clean(path)) != folder {
		return
	}
	os.Remove(path)
	removeIfEmpty(folder)
}

// cleanRoots returns absolute, clean copies of the file roots.
func cleanRoots(roots []string) []string {
	var out []string
	for _, r := range roots {
		if r == "" {
			continue
		}
		if abs, err := filepath.Abs(r); err == nil {
			r = abs
		}
		out = append(out, filepath.Clean(r))
	}
	return out
}

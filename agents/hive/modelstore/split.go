package modelstore

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/gguf"
)

// A split model (PREFIX-00001-of-0000N.gguf …) is named by its first shard;
// the store fetches, hashes, catalogues and checks every shard, in the
// model's folder, each resumed and verified on its own.

// shardNames are the file names of every shard when name is a first shard,
// else nil.
func shardNames(name string) []string {
	_, no, _, ok := gguf.ParseSplitPath(name)
	if !ok || no != 0 {
		return nil
	}
	return gguf.ShardPaths(name)
}

// shardRef is ref pointing at the shard file instead of the first one; the
// pin stays with the first shard (the file the configuration names).
func shardRef(ref Ref, file string) Ref {
	r := ref
	r.SHA256 = ""
	switch ref.Provider {
	case ProviderHF:
		r.File = file
	case ProviderHTTPS:
		r.File = path.Base(file)
		r.URL = strings.TrimSuffix(ref.URL, path.Base(ref.URL)) + path.Base(file)
	}
	return r
}

// downloadShards fetches every shard of a split hf: or https model into
// folder and returns the first shard with the whole model's size, plus the
// list of shards. Progress counts the bytes of all shards.
func (s *Store) downloadShards(ctx context.Context, folder string, ref Ref, names []string, progress func(hiveapi.Progress)) (fetched, []hiveapi.Shard, error) {
	var first fetched
	var shards []hiveapi.Shard
	var done int64
	for i, name := range names {
		r := ref
		if i > 0 {
			r = shardRef(ref, name)
		}
		var report func(hiveapi.Progress)
		if progress != nil {
			base := done
			report = func(p hiveapi.Progress) {
				p.Bytes += base
				if p.Total > 0 {
					p.Total += base
				}
				progress(p)
			}
		}
		got, err := s.download(ctx, folder, r, report)
		if err != nil {
			return fetched{}, nil, fmt.Errorf("shard %d of %d (%s): %w", i+1, len(names), path.Base(name), err)
		}
		if i == 0 {
			first = got
		}
		done += got.size
		shards = append(shards, hiveapi.Shard{File: filepath.Base(got.path), Size: got.size, SHA256: got.sum})
	}
	first.size = done
	return first, shards, nil
}

// localShards hashes every shard beside a split file:// model.
func (s *Store) localShards(ref Ref, names []string, progress func(hiveapi.Progress)) (fetched, []hiveapi.Shard, error) {
	var first fetched
	var shards []hiveapi.Shard
	dir := filepath.Dir(ref.Path)
	for i, name := range names {
		r := ref
		r.Path = filepath.Join(dir, filepath.Base(name))
		got, err := s.local(r, nil)
		if err != nil {
			return fetched{}, nil, fmt.Errorf("shard %d of %d: %w", i+1, len(names), err)
		}
		if i == 0 {
			first = got
		} else {
			first.size += got.size
		}
		shards = append(shards, hiveapi.Shard{File: filepath.Base(r.Path), Size: got.size, SHA256: got.sum})
	}
	if progress != nil {
		progress(hiveapi.Progress{Bytes: first.size, Total: first.size})
	}
	return first, shards, nil
}

// shardsPresent reports whether every shard of m is on disk with its size.
func shardsPresent(m hiveapi.Model, stat func(string) (os.FileInfo, error)) bool {
	dir := filepath.Dir(m.Path)
	for _, sh := range m.Shards {
		fi, err := stat(filepath.Join(dir, sh.File))
		if err != nil || !fi.Mode().IsRegular() || fi.Size() != sh.Size {
			return false
		}
	}
	return true
}

// removeShards deletes the other shards of m that lie in its own folder.
func (s *Store) removeShards(name string, m hiveapi.Model) {
	dir := filepath.Dir(m.Path)
	for _, sh := range m.Shards[min(1, len(m.Shards)):] {
		s.removeFile(name, filepath.Join(dir, sh.File))
	}
}

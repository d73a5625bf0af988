package gguf

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
)

// A split model is several GGUF files named the way llama.cpp's gguf-split
// names them, PREFIX-00001-of-00003.gguf, … The first holds every metadata
// key; each holds split.no (0-based), split.count and split.tensors.count
// (the tensors of all shards), and its own tensors with offsets into its own
// data section. llama.cpp loads the first and finds the others beside it.
const (
	KeySplitNo           = "split.no"
	KeySplitCount        = "split.count"
	KeySplitTensorsCount = "split.tensors.count"
)

var splitNameRe = regexp.MustCompile(`^(.+)-(\d{5})-of-(\d{5})\.gguf$`)

// SplitPath is the name of shard no (0-based) of count: PREFIX-0000N-of-0000C.gguf.
func SplitPath(prefix string, no, count int) string {
	return fmt.Sprintf("%s-%05d-of-%05d.gguf", prefix, no+1, count)
}

// ParseSplitPath recognises a shard's name and returns its prefix, its
// number (0-based) and the shard count.
func ParseSplitPath(path string) (prefix string, no, count int, ok bool) {
	m := splitNameRe.FindStringSubmatch(path)
	if m == nil {
		return "", 0, 0, false
	}
	n, _ := strconv.Atoi(m[2])
	c, _ := strconv.Atoi(m[3])
	if n < 1 || c < 2 || n > c {
		return "", 0, 0, false
	}
	return m[1], n - 1, c, true
}

// ShardPaths lists every shard of the split model whose first shard is
// path, in order; a file that is not named as a first shard is alone.
func ShardPaths(path string) []string {
	prefix, no, count, ok := ParseSplitPath(path)
	if !ok || no != 0 {
		return []string{path}
	}
	out := make([]string, count)
	for i := range out {
		out[i] = SplitPath(prefix, i, count)
	}
	return out
}

// FirstShardPath is the first shard of the split model path is a shard of
// (PREFIX-00001-of-0000N.gguf beside it), or path itself when it is not
// named as a shard.
func FirstShardPath(path string) string {
	prefix, _, count, ok := ParseSplitPath(path)
	if !ok {
		return path
	}
	return SplitPath(prefix, 0, count)
}

// ReadAnyShard reads the whole model one of whose files is path: any shard
// of a split model gives every shard, read from the first (see ReadSplit);
// a file that is not a shard gives itself. llama.cpp loads only the first
// shard's path, so the hive uses ReadSplit; this is for people inspecting.
func ReadAnyShard(path string) ([]*File, error) {
	first := FirstShardPath(path)
	if first == path {
		return ReadSplit(path)
	}
	if _, err := os.Stat(first); errors.Is(err, fs.ErrNotExist) {
		_, _, count, _ := ParseSplitPath(path)
		return nil, fmt.Errorf("shard 1 of %d of %s is missing (%s): download every shard", count, filepath.Base(path), filepath.Base(first))
	}
	return ReadSplit(first)
}

// ReadSplit reads the header of path and, when it is the first shard of a
// split model, of every other shard beside it, checking that they belong
// together. One file gives one header.
func ReadSplit(path string) ([]*File, error) {
	first, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	n, _ := first.Uint(KeySplitCount)
	if n <= 1 {
		return []*File{first}, nil
	}
	paths := ShardPaths(path)
	if len(paths) != int(n) {
		return nil, fmt.Errorf("%s says it is one of %d shards but is not named like the first of them (%s)", path, n, filepath.Base(SplitPath("NAME", 0, int(n))))
	}
	files := []*File{first}
	total := len(first.Tensors)
	for i, p := range paths[1:] {
		f, err := ReadFile(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("shard %d of %d of %s is missing (%s): download every shard", i+2, n, filepath.Base(path), filepath.Base(p))
			}
			return nil, err
		}
		if no, _ := f.Uint(KeySplitNo); no != uint64(i+1) {
			return nil, fmt.Errorf("%s has split.no %d, want %d: the shards do not belong together", p, no, i+1)
		}
		files = append(files, f)
		total += len(f.Tensors)
	}
	if want, ok := first.Uint(KeySplitTensorsCount); ok && want != uint64(total) {
		return nil, fmt.Errorf("the %d shards of %s hold %d tensors but split.tensors.count says %d: a shard is from another model", n, filepath.Base(path), total, want)
	}
	return files, nil
}

// Merge returns one File describing a whole split model: the first shard's
// metadata and every shard's tensors, with Size the sum of the files.
// Tensor offsets stay relative to their own shard.
func Merge(files []*File) *File {
	if len(files) == 1 {
		return files[0]
	}
	m := *files[0]
	m.index = nil
	m.Tensors = nil
	m.Size = 0
	for _, f := range files {
		m.Tensors = append(m.Tensors, f.Tensors...)
		m.Size += f.Size
	}
	return &m
}

// ReadModelMetadata reads the Metadata of the model whose (first) file is path.
func ReadModelMetadata(path string) (Metadata, error) {
	files, err := ReadSplit(path)
	if err != nil {
		return Metadata{}, err
	}
	return Merge(files).Metadata(), nil
}

// WriteSplit writes w as a split model of shards holding at most
// maxTensors tensors each, named from prefix (see SplitPath), and returns
// the paths written. A model that fits in one shard is refused: a split
// has at least two.
func (w *Writer) WriteSplit(ctx context.Context, prefix string, maxTensors int) ([]string, error) {
	if w.err != nil {
		return nil, w.err
	}
	if maxTensors < 1 {
		return nil, fmt.Errorf("a shard must hold at least one tensor")
	}
	count := (len(w.tensors) + maxTensors - 1) / maxTensors
	if count < 2 {
		return nil, fmt.Errorf("%d tensors fit in one file of %d: a split needs at least two shards", len(w.tensors), maxTensors)
	}
	var paths []string
	for no := 0; no < count; no++ {
		shard := NewWriter()
		if no == 0 {
			for _, kv := range w.kv {
				shard.Set(kv.Key, kv.Value)
			}
		} else if i, ok := w.keys["general.alignment"]; ok {
			shard.Set("general.alignment", w.kv[i].Value)
		}
		shard.Set(KeySplitNo, uint16(no))
		shard.Set(KeySplitCount, uint16(count))
		shard.Set(KeySplitTensorsCount, int32(len(w.tensors)))
		for _, t := range w.tensors[no*maxTensors : min(len(w.tensors), (no+1)*maxTensors)] {
			shard.AddTensor(t.info.Name, t.info.Type, t.info.Dims, t.src)
		}
		p := SplitPath(prefix, no, count)
		if err := writeFile(ctx, shard, p); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

func writeFile(ctx context.Context, w *Writer, path string) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := w.WriteTo(ctx, out); err != nil {
		out.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return out.Close()
}

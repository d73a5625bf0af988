package gguf

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSplitRoundTrip(t *testing.T) {
	p, err := LookupPreset("qwen3-tiny")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	paths, err := p.Writer(DefaultSeed).WriteSplit(context.Background(), filepath.Join(dir, "qwen3"), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 3 || filepath.Base(paths[0]) != "qwen3-00001-of-00003.gguf" || filepath.Base(paths[2]) != "qwen3-00003-of-00003.gguf" {
		t.Fatalf("wrote %v", paths)
	}
	single, err := SynthFile(context.Background(), filepath.Join(dir, "one.gguf"), "qwen3-tiny", DefaultSeed)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := ReadModelMetadata(single.Path)
	if err != nil {
		t.Fatal(err)
	}
	split, err := ReadModelMetadata(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	if split.Shards != 3 || split.TensorBytes != whole.TensorBytes || split.Parameters != whole.Parameters || split.KeyLength != whole.KeyLength || split.Vocab != whole.Vocab {
		t.Errorf("split metadata %+v, one file %+v", split, whole)
	}
	if got := ShardPaths(paths[0]); strings.Join(got, ",") != strings.Join(paths, ",") {
		t.Errorf("ShardPaths = %v", got)
	}

	os.Remove(paths[1])
	if _, err := ReadSplit(paths[0]); err == nil || !strings.Contains(err.Error(), "shard 2 of 3") {
		t.Errorf("missing shard: %v", err)
	}
}

func TestParseSplitPath(t *testing.T) {
	tests := []struct {
		in        string
		prefix    string
		no, count int
		ok        bool
	}{
		{"m-00001-of-00003.gguf", "m", 0, 3, true},
		{"a/b/m-00003-of-00003.gguf", "a/b/m", 2, 3, true},
		{"m-00004-of-00003.gguf", "", 0, 0, false},
		{"m-00001-of-00001.gguf", "", 0, 0, false},
		{"m-00000-of-00002.gguf", "", 0, 0, false},
		{"m.gguf", "", 0, 0, false},
		{"m-1-of-3.gguf", "", 0, 0, false},
	}
	for _, tt := range tests {
		prefix, no, count, ok := ParseSplitPath(tt.in)
		if prefix != tt.prefix || no != tt.no || count != tt.count || ok != tt.ok {
			t.Errorf("ParseSplitPath(%q) = %q %d %d %v", tt.in, prefix, no, count, ok)
		}
	}
}

func TestReadAnyShard(t *testing.T) {
	p, err := LookupPreset("qwen3-tiny")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	paths, err := p.Writer(DefaultSeed).WriteSplit(context.Background(), filepath.Join(dir, "q3"), 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range paths {
		files, err := ReadAnyShard(path)
		if err != nil {
			t.Fatalf("ReadAnyShard(%s): %v", filepath.Base(path), err)
		}
		if m := Merge(files); len(files) != 3 || len(m.Tensors) != 25 {
			t.Errorf("ReadAnyShard(%s) = %d files, %d tensors", filepath.Base(path), len(files), len(m.Tensors))
		}
	}
	tests := []struct {
		remove, read, want string
	}{
		{"q3-00003-of-00003.gguf", "q3-00002-of-00003.gguf", "shard 3 of 3 of q3-00001-of-00003.gguf is missing (q3-00003-of-00003.gguf)"},
		{"q3-00001-of-00003.gguf", "q3-00003-of-00003.gguf", "shard 1 of 3 of q3-00003-of-00003.gguf is missing (q3-00001-of-00003.gguf)"},
	}
	for _, tt := range tests {
		if err := os.Remove(filepath.Join(dir, tt.remove)); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadAnyShard(filepath.Join(dir, tt.read)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("without %s, ReadAnyShard(%s) = %v, want %q", tt.remove, tt.read, err, tt.want)
		}
	}
}

func TestFirstShardPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a/m-00002-of-00003.gguf", "a/m-00001-of-00003.gguf"},
		{"m-00001-of-00002.gguf", "m-00001-of-00002.gguf"},
		{"m.gguf", "m.gguf"},
		{"m-00004-of-00003.gguf", "m-00004-of-00003.gguf"},
	}
	for _, tt := range tests {
		if got := FirstShardPath(tt.in); got != tt.want {
			t.Errorf("FirstShardPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

package modellock

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/rbee-dev/rbee/agents/hive/modelstore"
	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/gguf"
	"github.com/rbee-dev/rbee/state"
)

const repo = "org/repo"

// loadConfig writes src as rbee.hcl in a new folder and loads it.
func loadConfig(t *testing.T, src string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rbee.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Load(path, config.LoadOptions{})
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	return cfg
}

func hfModel(name, file, extra string) string {
	return `model "` + name + `" {
  source = "hf:` + repo + `"
  file   = "` + file + `"
  ` + extra + `
}
`
}

func TestResolve(t *testing.T) {
	h := newHub(t)
	c1 := h.push(repo, "main", map[string]string{
		"lfs.gguf": "lfs bytes", "git.gguf": "small git file",
		"m-00001-of-00003.gguf": "one", "m-00002-of-00003.gguf": "two", "m-00003-of-00003.gguf": "three",
	})
	h.plain["git.gguf"] = true
	tests := []struct {
		name       string
		block      string
		noCommit   bool
		wantFiles  []File
		wantHashed int
		wantErr    string
	}{
		{name: "LFS file from the HEAD alone", block: hfModel("a", "lfs.gguf", ""),
			wantFiles: []File{{"lfs.gguf", 9, sum([]byte("lfs bytes"))}}},
		{name: "git file streamed through sha256", block: hfModel("a", "git.gguf", ""),
			wantFiles: []File{{"git.gguf", 14, sum([]byte("small git file"))}}, wantHashed: 1},
		{name: "commit from the API without X-Repo-Commit", block: hfModel("a", "lfs.gguf", ""), noCommit: true,
			wantFiles: []File{{"lfs.gguf", 9, sum([]byte("lfs bytes"))}}},
		{name: "every shard of a split model", block: hfModel("a", "m-00001-of-00003.gguf", ""),
			wantFiles: []File{{"m-00001-of-00003.gguf", 3, sum([]byte("one"))}, {"m-00002-of-00003.gguf", 3, sum([]byte("two"))}, {"m-00003-of-00003.gguf", 5, sum([]byte("three"))}}},
		{name: "missing file", block: hfModel("a", "nope.gguf", ""), wantErr: "model not found"},
		{name: "missing branch", block: hfModel("a", "lfs.gguf", `revision = "dev"`), wantErr: "model not found"},
		{name: "pin that disagrees", block: hfModel("a", "lfs.gguf", `sha256 = "`+strings.Repeat("0", 64)+`"`), wantErr: "but the model block pins"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.mu.Lock()
			h.noCommit = tc.noCommit
			h.mu.Unlock()
			cfg := loadConfig(t, tc.block)
			r := &Resolver{Endpoint: h.srv.URL}
			e, err := r.Resolve(context.Background(), cfg.Model("a"))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one that says %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.Commit != c1 || e.Revision != "main" {
				t.Errorf("revision %q commit %q, want main at %s", e.Revision, e.Commit, c1)
			}
			if !equalFiles(e.Files, tc.wantFiles) {
				t.Errorf("files %+v, want %+v", e.Files, tc.wantFiles)
			}
			if r.Hashed != tc.wantHashed {
				t.Errorf("streamed %d files, want %d", r.Hashed, tc.wantHashed)
			}
		})
	}
}

func equalFiles(a, b []File) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestResolveHTTPSAndSynth(t *testing.T) {
	h := newHub(t)
	h.push(repo, "main", map[string]string{"lfs.gguf": "lfs bytes"})
	h.plain["lfs.gguf"] = true
	url := h.srv.URL + "/" + repo + "/resolve/main/lfs.gguf"
	cfg := loadConfig(t, `model "web" { source = "`+url+`" }
model "tiny" { source = "synth:tiny" }
`)
	r := &Resolver{Generator: "rbee test"}
	web, err := r.Resolve(context.Background(), cfg.Model("web"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (File{"lfs.gguf", 9, sum([]byte("lfs bytes"))}); len(web.Files) != 1 || web.Files[0] != want || web.Commit != "" {
		t.Errorf("https entry %+v, want one file %+v and no commit", web, want)
	}
	tiny, err := r.Resolve(context.Background(), cfg.Model("tiny"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := gguf.SynthFile(context.Background(), filepath.Join(t.TempDir(), "tiny.gguf"), "tiny", modelstore.SynthSeed)
	if err != nil {
		t.Fatal(err)
	}
	if want := (File{"tiny.gguf", got.Size, got.SHA256}); tiny.Files[0] != want || tiny.Generator != "rbee test" || tiny.Seed != modelstore.SynthSeed {
		t.Errorf("synth entry %+v, want %+v by rbee test with seed %d", tiny, want, modelstore.SynthSeed)
	}
}

func TestUpdate(t *testing.T) {
	h := newHub(t)
	c1 := h.push(repo, "main", map[string]string{"lfs.gguf": "v1"})
	cfg := loadConfig(t, hfModel("a", "lfs.gguf", "")+hfModel("b", "lfs.gguf", ""))
	r := &Resolver{Endpoint: h.srv.URL}
	ctx := context.Background()
	first, changes, err := Update(ctx, r, cfg, nil, &Build{"m", "v1"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 3 || changes[0].Kind != Added || changes[1].Subject != "a" || changes[2].Subject != "b" {
		t.Fatalf("changes of a first lock: %v", changes)
	}
	c2 := h.push(repo, "main", map[string]string{"lfs.gguf": "v2"})
	tests := []struct {
		name        string
		opts        Options
		wantCommits [2]string
		wantChanged []string
	}{
		{name: "kept without -upgrade", wantCommits: [2]string{c1, c1}},
		{name: "-upgrade follows the branch", opts: Options{Upgrade: true}, wantCommits: [2]string{c2, c2}, wantChanged: []string{"a", "b"}},
		{name: "-upgrade MODEL only that one", opts: Options{Upgrade: true, Only: "b"}, wantCommits: [2]string{c1, c2}, wantChanged: []string{"b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			next, changes, err := Update(ctx, r, cfg, first, &Build{"m", "v1"}, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := [2]string{next.Entry("a").Commit, next.Entry("b").Commit}; got != tc.wantCommits {
				t.Errorf("commits %v, want %v", got, tc.wantCommits)
			}
			var changed []string
			for _, c := range changes {
				changed = append(changed, c.Subject)
				if !strings.Contains(c.String(), "commit "+c1+" → "+c2) || !strings.Contains(c.String(), "sha256") {
					t.Errorf("change %q does not show the commit and sha256 that moved", c)
				}
			}
			if strings.Join(changed, ",") != strings.Join(tc.wantChanged, ",") {
				t.Errorf("changed %v, want %v", changed, tc.wantChanged)
			}
		})
	}
	t.Run("removed block and new build", func(t *testing.T) {
		only := loadConfig(t, hfModel("a", "lfs.gguf", ""))
		next, changes, err := Update(ctx, r, only, first, &Build{"m", "v2"}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(next.Models) != 1 || len(changes) != 2 || changes[0].Subject != "llama_cpp" || changes[1].Kind != Removed || changes[1].Subject != "b" {
			t.Errorf("models %d, changes %v", len(next.Models), changes)
		}
	})
	if _, _, err := Update(ctx, r, cfg, first, nil, Options{Upgrade: true, Only: "zzz"}); err == nil || !strings.Contains(err.Error(), `no model "zzz"`) {
		t.Errorf("-upgrade of an unknown model: %v", err)
	}
}

func TestForConfigAndPin(t *testing.T) {
	h := newHub(t)
	c1 := h.push(repo, "main", map[string]string{"lfs.gguf": "v1", "other.gguf": "o"})
	cfg := loadConfig(t, hfModel("a", "lfs.gguf", "")+`model "tiny" { source = "synth:tiny" }`)
	if l, err := ForConfig(cfg); l != nil || err != nil {
		t.Fatalf("without a lock file: %v, %v; want nothing enforced", l, err)
	}
	lock, _, err := Update(context.Background(), &Resolver{Endpoint: h.srv.URL}, cfg, nil, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	path := Path(cfg.Path)
	if err := lock.Write(path); err != nil {
		t.Fatal(err)
	}
	l, err := ForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &state.ModelRecord{Name: "a", Source: "hf:" + repo, File: "lfs.gguf", Revision: "main"}
	if err := l.Pin(r); err != nil || r.Revision != c1 || r.SHA256 != sum([]byte("v1")) {
		t.Errorf("pinned record %+v (%v), want revision %s and the file's sha256", r, err, c1)
	}
	dir := filepath.Dir(cfg.Path)
	tests := []struct{ name, src, want string }{
		{"model not in the lock", hfModel("a", "lfs.gguf", "") + `model "tiny" { source = "synth:tiny" }
model "new" { source = "synth:tiny" }`, `model "new" is not in the lock`},
		{"file changed", hfModel("a", "other.gguf", "") + `model "tiny" { source = "synth:tiny" }`, "the block's file is other.gguf"},
		{"revision changed", hfModel("a", "lfs.gguf", `revision = "dev"`) + `model "tiny" { source = "synth:tiny" }`, "the block's revision is dev"},
		{"source changed", hfModel("a", "lfs.gguf", "") + `model "tiny" { source = "synth:tinyllama-q4_0" }`, "the block's source is synth:tinyllama-q4_0"},
		{"pin changed", hfModel("a", "lfs.gguf", `sha256 = "`+strings.Repeat("a", 64)+`"`) + `model "tiny" { source = "synth:tiny" }`, "the block pins sha256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(cfg.Path, []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			changed, diags := config.Load(cfg.Path, config.LoadOptions{StateDir: filepath.Join(dir, ".rbee")})
			if diags.HasErrors() {
				t.Fatal(diags.Err())
			}
			_, err := ForConfig(changed)
			var me *MismatchError
			if !errors.As(err, &me) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "run rbee lock") {
				t.Errorf("err = %v, want a mismatch that says %q and to run rbee lock", err, tc.want)
			}
		})
	}
}

func TestBytesRoundTrip(t *testing.T) {
	l := &Lock{LlamaCpp: &Build{"github.com/ollama/ollama", "v0.17.4"}}
	l.Set(Entry{Name: "web", Source: "https://example.com/m.gguf", Files: []File{{"m.gguf", 10, strings.Repeat("b", 64)}}})
	l.Set(Entry{Name: "hf", Source: "hf:org/repo", Revision: "main", Commit: strings.Repeat("c", 40),
		Files: []File{{"m-00001-of-00002.gguf", 1, strings.Repeat("1", 64)}, {"m-00002-of-00002.gguf", 2, strings.Repeat("2", 64)}}})
	l.Set(Entry{Name: "tiny", Source: "synth:tiny", Generator: "rbee 1", Seed: 1, Files: []File{{"tiny.gguf", 3, strings.Repeat("d", 64)}}})
	l.Set(Entry{Name: "local", Source: "file:///models/m.gguf"})
	b := l.Bytes()
	if !bytes.HasPrefix(b, []byte(Header)) {
		t.Errorf("no generated-file header:\n%s", b)
	}
	if f := hclwrite.Format(b); !bytes.Equal(f, b) {
		t.Errorf("not in canonical format:\n%s", b)
	}
	back, err := Parse("x.hcl", b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Bytes(), b) || len(back.Models) != 4 || back.Models[0].Name != "hf" || *back.LlamaCpp != *l.LlamaCpp {
		t.Errorf("round trip changed the lock:\n%s\n---\n%s", b, back.Bytes())
	}
	for i, e := range l.Models {
		if !e.Equal(back.Models[i]) {
			t.Errorf("entry %s: %+v after the round trip, want %+v", e.Name, back.Models[i], e)
		}
	}
}

func TestParseErrors(t *testing.T) {
	file := func(sha string, size string) string {
		return `model "a" {
  source = "synth:tiny"
  file "tiny.gguf" {
    size   = ` + size + `
    sha256 = "` + sha + `"
  }
}
`
	}
	good := strings.Repeat("a", 64)
	tests := []struct{ name, src, want string }{
		{"not HCL", "model {", "x.hcl:1:"},
		{"unknown attribute", `model "a" {` + "\n" + `  source = "synth:tiny"` + "\n  colour = 1\n}\n", "x.hcl:3:3"},
		{"bad sha256", file("ABC", "1"), "is not 64 lowercase hexadecimal digits"},
		{"negative size", file(good, "-1"), "is negative"},
		{"no file", `model "a" { source = "synth:tiny" }`, "has no file block"},
		{"hf without commit", `model "a" {` + "\n" + `  source = "hf:o/r"` + "\n" + `  commit = "main"` + "\n}\n", "is not a 40-digit"},
		{"bad name", strings.Replace(file(good, "1"), `"a"`, `"A B"`, 1), "model name"},
		{"twice", file(good, "1") + file(good, "1"), "locked twice"},
		{"too large", strings.Repeat("#", MaxBytes+1), "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.hcl", []byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "rbee lock") {
				t.Errorf("err = %v, want one that says %q and how to fix it", err, tc.want)
			}
		})
	}
}

func TestShards(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"m.gguf", []string{"m.gguf"}},
		{"m-00002-of-00003.gguf", []string{"m-00002-of-00003.gguf"}},
		{"m-00001-of-00002.gguf", []string{"m-00001-of-00002.gguf", "m-00002-of-00002.gguf"}},
		{"m-00001-of-00000.gguf", []string{"m-00001-of-00000.gguf"}},
	}
	for _, tc := range tests {
		if got := Shards(tc.file); strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("Shards(%q) = %v, want %v", tc.file, got, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	l := &Lock{LlamaCpp: &Build{"m", "v"}}
	l.Set(Entry{Name: "hf", Source: "hf:org/repo", Revision: "main", Commit: strings.Repeat("c", 40), Files: []File{{"a.gguf", 1, strings.Repeat("1", 64)}}})
	f.Add(l.Bytes())
	f.Add([]byte(`model "a" { source = "synth:tiny" }`))
	f.Add([]byte("model \"a\" {\n  file \"x\" { size = 1e400 }\n}"))
	f.Fuzz(func(t *testing.T, src []byte) {
		got, err := Parse("fuzz.hcl", src)
		if err != nil {
			return
		}
		// A lock that parses writes out to text that parses to the same lock.
		again, err := Parse("again.hcl", got.Bytes())
		if err != nil {
			t.Fatalf("the written form of a parsed lock does not parse: %v\n%s", err, got.Bytes())
		}
		if !bytes.Equal(again.Bytes(), got.Bytes()) {
			t.Fatalf("round trip differs:\n%s\n---\n%s", got.Bytes(), again.Bytes())
		}
	})
}

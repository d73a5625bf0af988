package secret

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestDigest(t *testing.T) {
	a, b := Digest("hf_abc"), Digest("hf_abd")
	if a == b {
		t.Fatal("two values share a digest")
	}
	if a != Digest("hf_abc") {
		t.Fatal("the digest of one value changed between calls")
	}
	if !strings.HasPrefix(a, "sha256:") || len(a) != len("sha256:")+64 || strings.Contains(a, "hf_abc") {
		t.Fatalf("digest %q: want sha256: and 64 hex digits, without the value", a)
	}
	if Digests(nil) != nil || Redact(map[string]string{}) != nil {
		t.Fatal("an empty env must give nil maps (omitted from JSON)")
	}
	if got := Redact(map[string]string{"K": "v"}); got["K"] != Redacted {
		t.Fatalf("Redact: %v", got)
	}
}

func TestCompareAndMatches(t *testing.T) {
	tests := []struct {
		name          string
		before, after map[string]string
		want          []Change
	}{
		{"equal", map[string]string{"A": "1"}, map[string]string{"A": "1"}, nil},
		{"both empty", nil, map[string]string{}, nil},
		{"changed", map[string]string{"A": "1", "B": "2"}, map[string]string{"A": "1", "B": "3"}, []Change{{"B", "changed"}}},
		{"added and removed", map[string]string{"Z": "1"}, map[string]string{"A": "1"}, []Change{{"A", "added"}, {"Z", "removed"}}},
		{"value moved to another key", map[string]string{"A": "x"}, map[string]string{"B": "x"}, []Change{{"A", "removed"}, {"B", "added"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compare(Digests(tt.before), Digests(tt.after))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Compare = %v, want %v", got, tt.want)
			}
			if m := Matches(tt.after, Digests(tt.before)); m != (len(tt.want) == 0) {
				t.Errorf("Matches = %v with changes %v", m, tt.want)
			}
		})
	}
}

func TestEnvFileRoundTrip(t *testing.T) {
	env := map[string]string{"HF_TOKEN": "hf_s3cr3t=with=equals", "EMPTY": "", "Q": `it's "$HOME" #not a comment`, "TAB": "a\tb"}
	b, err := EnvFile(env)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hive.env")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	pairs, err := ReadEnvFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"EMPTY=", "HF_TOKEN=hf_s3cr3t=with=equals", `Q=it's "$HOME" #not a comment`, "TAB=a\tb"}
	if !reflect.DeepEqual(pairs, want) {
		t.Fatalf("read back %q, want %q", pairs, want)
	}
}

func TestEnvFileRefusals(t *testing.T) {
	for _, env := range []map[string]string{{"BAD KEY": "v"}, {"1X": "v"}, {"K": "line\nX=injected"}, {"K": "nul\x00"}} {
		if _, err := EnvFile(env); err == nil {
			t.Errorf("EnvFile(%q) wrote a file that would not read back the same", env)
		} else if strings.Contains(err.Error(), "injected") {
			t.Errorf("the error repeats the value: %v", err)
		}
	}
}

func TestReadEnvFileRefusals(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		mode          os.FileMode
		want          string
	}{
		{"group readable", "K=v\n", 0o640, "must be private"},
		{"world readable", "K=v\n", 0o644, "chmod 600"},
		{"no equals", "# c\nSECRETVALUE\n", 0o600, "line 2 is not KEY=VALUE"},
		{"bad name", "BAD-NAME=SECRETVALUE\n", 0o600, "line 1"},
		{"too large", strings.Repeat("K=v\n", MaxEnvFileBytes/4+1), 0o600, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			_, err := ReadEnvFile(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "SECRETVALUE") {
				t.Fatalf("the error repeats the file's content: %v", err)
			}
		})
	}
	if _, err := ReadEnvFile(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("a folder: %v", err)
	}
	if _, err := ReadEnvFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing file was read")
	}
}

// FuzzParseEnv feeds hostile files: no panic, and whatever parses writes
// back through EnvFile to the same pairs.
func FuzzParseEnv(f *testing.F) {
	for _, s := range []string{"K=v\n", "# c\n\nA=1\r\nB==\n", "=x", "K", "K=\x00", strings.Repeat("A", 70000) + "=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pairs, err := ParseEnv(strings.NewReader(s))
		if err != nil {
			return
		}
		env := map[string]string{}
		for _, p := range pairs {
			k, v, _ := strings.Cut(p, "=")
			env[k] = v
		}
		b, err := EnvFile(env)
		if err != nil {
			return // a value with \r survives ParseEnv's line split only at a line end
		}
		again, err := ParseEnv(strings.NewReader(string(b)))
		if err != nil || len(again) != len(env) {
			t.Fatalf("%q: written back as %q, read %q (%v)", s, b, again, err)
		}
	})
}

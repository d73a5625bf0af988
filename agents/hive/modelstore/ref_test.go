package modelstore

import (
	"strings"
	"testing"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
)

func TestParseRef(t *testing.T) {
	pin := strings.Repeat("ab", 32)
	tests := []struct {
		name    string
		spec    hiveapi.ModelSpec
		want    Ref
		wantErr string
	}{
		{"hf with defaults", hiveapi.ModelSpec{Source: "hf:TheBloke/TinyLlama-1.1B-GGUF", File: "tiny.Q4_K_M.gguf"},
			Ref{Provider: "hf", Repo: "TheBloke/TinyLlama-1.1B-GGUF", File: "tiny.Q4_K_M.gguf", Revision: "main"}, ""},
		{"hf with revision, subfolder and pin", hiveapi.ModelSpec{Source: "hf:org/repo", File: "q4/x.gguf", Revision: "v1.0", SHA256: strings.ToUpper(pin)},
			Ref{Provider: "hf", Repo: "org/repo", File: "q4/x.gguf", Revision: "v1.0", SHA256: pin}, ""},
		{"hf without file", hiveapi.ModelSpec{Source: "hf:org/repo"}, Ref{}, `needs "file"`},
		{"hf without repo", hiveapi.ModelSpec{Source: "hf:org", File: "x.gguf"}, Ref{}, "hf:ORG/REPO"},
		{"hf with three parts", hiveapi.ModelSpec{Source: "hf:a/b/c", File: "x.gguf"}, Ref{}, "hf:ORG/REPO"},
		{"hf traversal in repo", hiveapi.ModelSpec{Source: "hf:org/..", File: "x.gguf"}, Ref{}, "hf:ORG/REPO"},
		{"hf traversal in file", hiveapi.ModelSpec{Source: "hf:org/repo", File: "../../etc/passwd"}, Ref{}, "traversal"},
		{"hf absolute file", hiveapi.ModelSpec{Source: "hf:org/repo", File: "/etc/passwd"}, Ref{}, "relative"},
		{"hf shell characters in file", hiveapi.ModelSpec{Source: "hf:org/repo", File: "x;rm -rf.gguf"}, Ref{}, "letters, digits"},
		{"hf bad revision", hiveapi.ModelSpec{Source: "hf:org/repo", File: "x.gguf", Revision: "../main"}, Ref{}, "revision"},
		{"https", hiveapi.ModelSpec{Source: "https://example.com/m/model.gguf"},
			Ref{Provider: "https", URL: "https://example.com/m/model.gguf", File: "model.gguf"}, ""},
		{"https with file name", hiveapi.ModelSpec{Source: "https://example.com/download?id=3", File: "m.gguf"},
			Ref{Provider: "https", URL: "https://example.com/download?id=3", File: "m.gguf"}, ""},
		{"https with credentials", hiveapi.ModelSpec{Source: "https://u:p@example.com/m.gguf"}, Ref{}, "credentials"},
		{"plain http to a remote host", hiveapi.ModelSpec{Source: "http://example.com/m.gguf"}, Ref{}, "loopback"},
		{"plain http to loopback", hiveapi.ModelSpec{Source: "http://127.0.0.1:8000/m.gguf"},
			Ref{Provider: "https", URL: "http://127.0.0.1:8000/m.gguf", File: "m.gguf"}, ""},
		{"file", hiveapi.ModelSpec{Source: "file:///models/a.gguf"}, Ref{Provider: "file", Path: "/models/a.gguf"}, ""},
		{"file relative", hiveapi.ModelSpec{Source: "file://models/a.gguf"}, Ref{}, "three slashes"},
		{"file traversal", hiveapi.ModelSpec{Source: "file:///models/../etc/a.gguf"}, Ref{}, "clean"},
		{"file not gguf", hiveapi.ModelSpec{Source: "file:///etc/passwd"}, Ref{}, ".gguf"},
		{"synth", hiveapi.ModelSpec{Source: "synth:tiny"}, Ref{Provider: "synth", Preset: "tiny"}, ""},
		{"synth unknown", hiveapi.ModelSpec{Source: "synth:huge"}, Ref{}, "unknown synth preset"},
		{"unknown scheme", hiveapi.ModelSpec{Source: "s3://bucket/x.gguf"}, Ref{}, "allowed forms"},
		{"no scheme", hiveapi.ModelSpec{Source: "tinyllama"}, Ref{}, "allowed forms"},
		{"empty", hiveapi.ModelSpec{}, Ref{}, "allowed forms"},
		{"control characters", hiveapi.ModelSpec{Source: "synth:tiny\n"}, Ref{}, "control characters"},
		{"bad pin", hiveapi.ModelSpec{Source: "synth:tiny", SHA256: "abc"}, Ref{}, "64 hexadecimal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRef(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseRef(%+v) error = %v, want one containing %q", tt.spec, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRef(%+v): %v", tt.spec, err)
			}
			if got != tt.want {
				t.Errorf("ParseRef(%+v) = %+v, want %+v", tt.spec, got, tt.want)
			}
		})
	}
}

func TestHFURL(t *testing.T) {
	r := Ref{Provider: "hf", Repo: "org/repo", File: "sub dir/x.gguf", Revision: "refs/pr/1"}
	want := "http://127.0.0.1:1/org/repo/resolve/refs%2Fpr%2F1/sub%20dir/x.gguf"
	if got := r.HFURL("http://127.0.0.1:1/"); got != want {
		t.Errorf("HFURL = %q, want %q", got, want)
	}
}

func TestLinkedSHA256(t *testing.T) {
	sha := strings.Repeat("0f", 32)
	tests := map[string]string{
		`"` + sha + `"`:                              sha,
		`W/"` + strings.ToUpper(sha) + `"`:           sha,
		`"da39a3ee5e6b4b0d3255bfef95601890afd80709"`: "", // a git sha1: not checkable
		"": "",
	}
	for in, want := range tests {
		if got := linkedSHA256(in); got != want {
			t.Errorf("linkedSHA256(%q) = %q, want %q", in, got, want)
		}
	}
}

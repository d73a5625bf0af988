package modelstore

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/gguf"
)

// Providers a model can come from.
const (
	ProviderHF    = "hf"
	ProviderHTTPS = "https"
	ProviderFile  = "file"
	ProviderSynth = "synth"
)

// AllowedForms lists the accepted model sources, for error messages.
var AllowedForms = []string{
	`hf:ORG/REPO (with "file" and optionally "revision")`,
	"https://HOST/PATH",
	"file:///ABSOLUTE/PATH.gguf",
	"synth:PRESET (" + strings.Join(gguf.PresetNames(), ", ") + ")",
}

// Ref is a parsed, validated model source.
type Ref struct {
	Provider string
	Repo     string // hf: "org/repo"
	File     string // hf: file inside the repo; https: optional local file name
	Revision string // hf: branch, tag or commit (default "main")
	URL      string // https: the URL
	Path     string // file: the absolute local path
	Preset   string // synth: the preset name
	SHA256   string // optional pin, lowercase hex
}

// DefaultRevision is the Hugging Face revision used when none is given.
const DefaultRevision = "main"

var (
	hfPartRe   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$`)
	fileSegRe  = regexp.MustCompile(`^[A-Za-z0-9_+.-][A-Za-z0-9_+.@-]*$`)
	revisionRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$`)
	sha256Re   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// RefError is a source that cannot be used; its message names the problem
// and the allowed forms.
type RefError struct{ Msg string }

func (e *RefError) Error() string { return e.Msg }

func refErrorf(format string, args ...any) error {
	return &RefError{Msg: fmt.Sprintf(format, args...)}
}

// ParseRef validates a model spec and returns its parsed reference.
func ParseRef(spec hiveapi.ModelSpec) (Ref, error) {
	for field, v := range map[string]string{"source": spec.Source, "file": spec.File, "revision": spec.Revision, "sha256": spec.SHA256} {
		if strings.ContainsFunc(v, isControl) {
			return Ref{}, refErrorf("%s contains control characters", field)
		}
	}
	r := Ref{}
	if spec.SHA256 != "" {
		pin := strings.ToLower(spec.SHA256)
		if !sha256Re.MatchString(pin) {
			return Ref{}, refErrorf("sha256 %q is not a sha256 digest: 64 hexadecimal digits are expected", spec.SHA256)
		}
		r.SHA256 = pin
	}
	src := spec.Source
	scheme, rest, ok := strings.Cut(src, ":")
	if !ok {
		return Ref{}, unknownForm(src)
	}
	switch scheme {
	case "hf":
		return parseHF(r, rest, spec)
	case "https", "http":
		return parseURL(r, src, spec)
	case "file":
		return parseFile(r, src)
	case "synth":
		if _, err := gguf.LookupPreset(rest); err != nil {
			return Ref{}, refErrorf("source %q: %v", src, err)
		}
		r.Provider, r.Preset = ProviderSynth, rest
		return r, nil
	}
	return Ref{}, unknownForm(src)
}

// commitID is a full git commit id.
var commitID = regexp.MustCompile(`^[0-9a-f]{40}$`)

// IsCommit reports whether an hf: revision is a full commit id, which names
// a repository's content for good (a branch or tag may move).
func IsCommit(rev string) bool { return commitID.MatchString(rev) }

func unknownForm(src string) error {
	return refErrorf("source %q is not a model reference; allowed forms: %s", src, strings.Join(AllowedForms, "; "))
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func parseHF(r Ref, rest string, spec hiveapi.ModelSpec) (Ref, error) {
	org, repo, ok := strings.Cut(rest, "/")
	if !ok || !hfPartRe.MatchString(org) || !hfPartRe.MatchString(repo) || strings.Contains(rest, "..") {
		return Ref{}, refErrorf("source %q: a Hugging Face reference is hf:ORG/REPO, with letters, digits, '.', '_' and '-' in each part", spec.Source)
	}
	if spec.File == "" {
		return Ref{}, refErrorf("source %q needs \"file\": the GGUF file inside the repository, e.g. \"model.Q4_K_M.gguf\"", spec.Source)
	}
	if err := checkRelPath(spec.File); err != nil {
		return Ref{}, refErrorf("file %q: %v", spec.File, err)
	}
	rev := spec.Revision
	if rev == "" {
		rev = DefaultRevision
	}
	if !revisionRe.MatchString(rev) || strings.Contains(rev, "..") {
		return Ref{}, refErrorf("revision %q is not a branch, tag or commit name", spec.Revision)
	}
	r.Provider, r.Repo, r.File, r.Revision = ProviderHF, org+"/"+repo, spec.File, rev
	return r, nil
}

// checkRelPath accepts a relative slash-separated path without traversal.
func checkRelPath(p string) error {
	if strings.HasPrefix(p, "/") || strings.Contains(p, `\`) {
		return fmt.Errorf("must be a relative path inside the repository")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("path traversal ('..' or '.') is not allowed")
		}
		if !fileSegRe.MatchString(seg) {
			return fmt.Errorf("use letters, digits and . _ + - @ in file names, separated by '/'")
		}
	}
	return nil
}

func parseURL(r Ref, src string, spec hiveapi.ModelSpec) (Ref, error) {
	u, err := url.Parse(src)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return Ref{}, refErrorf("source %q is not a valid URL; allowed forms: %s", src, strings.Join(AllowedForms, "; "))
	}
	if u.User != nil {
		return Ref{}, refErrorf("source %q: credentials in the URL are not allowed; HF_TOKEN is sent to the Hugging Face endpoint", redact(u))
	}
	if u.Scheme == "http" && !api.IsLoopback(u.Hostname()) {
		return Ref{}, refErrorf("source %q: plain http is only allowed for loopback hosts; use https://", src)
	}
	name := spec.File
	if name == "" {
		name = path.Base(u.Path)
	}
	if name == "" || name == "/" || name == "." {
		return Ref{}, refErrorf("source %q has no file name in its path; set \"file\" to the local file name", src)
	}
	if strings.Contains(name, "/") {
		return Ref{}, refErrorf("file %q: a plain file name is expected for an https source", name)
	}
	if err := checkRelPath(name); err != nil {
		return Ref{}, refErrorf("file %q: %v", name, err)
	}
	r.Provider, r.URL, r.File = ProviderHTTPS, u.String(), name
	return r, nil
}

func redact(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

func parseFile(r Ref, src string) (Ref, error) {
	p, ok := strings.CutPrefix(src, "file://")
	if !ok || !strings.HasPrefix(p, "/") {
		return Ref{}, refErrorf("source %q: a local file is file:///ABSOLUTE/PATH.gguf (three slashes)", src)
	}
	if path.Clean(p) != p {
		return Ref{}, refErrorf("source %q: the path must be clean and absolute (no '..', '.', or '//')", src)
	}
	if !strings.HasSuffix(p, ".gguf") {
		return Ref{}, refErrorf("source %q: a local model must be a .gguf file", src)
	}
	r.Provider, r.Path = ProviderFile, p
	return r, nil
}

// Same reports whether two refs name the same content (the pin aside).
func (r Ref) Same(o Ref) bool {
	return r.Provider == o.Provider && r.Repo == o.Repo && r.File == o.File && r.Revision == o.Revision &&
		r.URL == o.URL && r.Path == o.Path && r.Preset == o.Preset
}

// String is the canonical source of the ref ("hf:org/repo", "synth:tiny", …).
func (r Ref) String() string {
	switch r.Provider {
	case ProviderHF:
		return "hf:" + r.Repo
	case ProviderHTTPS:
		return r.URL
	case ProviderFile:
		return "file://" + r.Path
	case ProviderSynth:
		return "synth:" + r.Preset
	}
	return ""
}

// HFURL is the resolve URL of an hf ref on endpoint (e.g. https://huggingface.co).
func (r Ref) HFURL(endpoint string) string {
	segs := strings.Split(r.File, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.TrimRight(endpoint, "/") + "/" + r.Repo + "/resolve/" + url.PathEscape(r.Revision) + "/" + strings.Join(segs, "/")
}

package config

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/spec"
)

// MaxNameLen is the longest node, model or pool name: a DNS label, so that a
// name can become a host name or a label anywhere (the hive itself allows
// spec.MaxNameLen for the model names and worker ids made from them).
const MaxNameLen = min(63, spec.MaxNameLen)

// Limits of pool attributes. They are the limits every hive enforces on
// PUT /v1/workers, so a file that validates is never refused there.
const (
	MaxSlots   = spec.MaxSlots   // parallel sequences per worker
	MinCtxSize = spec.MinCtxSize // tokens per slot
	MaxCtxSize = spec.MaxCtxSize // tokens per slot
	MaxDevice  = spec.MaxDevice  // GPU index
)

var (
	nameRe     = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	userRe     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
	envKeyRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	hfRepoRe   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$`)
	synthRe    = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	revisionRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)
	sha256Re   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// pathRe is what may appear in a path that reaches a remote command line.
	pathRe = regexp.MustCompile(`^[A-Za-z0-9_./+@:,=-]+$`)
)

// CheckName reports whether s is a valid node, model or pool name: lowercase
// letters, digits and dashes, not starting or ending with a dash, at most
// MaxNameLen characters (DNS-label safe).
func CheckName(s string) error {
	if len(s) == 0 || len(s) > MaxNameLen || !nameRe.MatchString(s) {
		return fmt.Errorf("%s is not a valid name: use 1-%d lowercase letters, digits and dashes, starting and ending with a letter or digit (DNS-safe)", clip(s), MaxNameLen)
	}
	return nil
}

// CheckSource reports whether s is a model reference rbee can provision:
// hf:org/repo, file:///absolute/path.gguf, https://host/path (http:// only to
// a loopback address) or synth:name.
func CheckSource(s string) error {
	const allowed = `allowed forms: "hf:org/repo" (with file = "x.gguf"), "file:///absolute/path.gguf", "https://host/path.gguf", "synth:name"`
	if len(s) > MaxSourceLen {
		return fmt.Errorf("source %s is %d characters long; allowed: at most %d", clip(s), len(s), MaxSourceLen)
	}
	if hasControl(s) {
		return fmt.Errorf("source contains control characters; %s", allowed)
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Errorf("%q has no scheme; %s", s, allowed)
	}
	switch scheme {
	case "hf":
		if !hfRepoRe.MatchString(rest) || strings.Contains(rest, "..") {
			return fmt.Errorf("%q is not a Hugging Face repository: expected hf:org/repo, e.g. hf:TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF", s)
		}
	case "synth":
		if !synthRe.MatchString(rest) {
			return fmt.Errorf("%q is not a synth model: expected synth:name with lowercase letters, digits, dots, dashes (e.g. synth:tiny)", s)
		}
	case "file":
		u, err := url.Parse(s)
		if err != nil || u.Host != "" || !strings.HasPrefix(rest, "///") || !path.IsAbs(u.Path) {
			return fmt.Errorf("%q is not a file reference: expected file:///absolute/path.gguf (three slashes, absolute path)", s)
		}
		if path.Clean(u.Path) != u.Path || strings.Contains(u.Path, "..") {
			return fmt.Errorf("%q: the path must be clean and absolute, without \"..\"", s)
		}
	case "https", "http":
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || u.User != nil {
			return fmt.Errorf("%q is not a valid URL: expected https://host/path.gguf (no credentials in the URL)", s)
		}
		if scheme == "http" && !api.IsLoopback(u.Hostname()) {
			return fmt.Errorf("%q: plain http is only allowed to a loopback address; use https://", s)
		}
	default:
		return fmt.Errorf("unknown source scheme %q; %s", scheme, allowed)
	}
	return nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// validator collects every problem in one pass.
type validator struct {
	cfg   *Config
	diags hcl.Diagnostics
}

func (v *validator) errorf(r hcl.Range, summary, format string, args ...any) {
	v.diags = append(v.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: rangePtr(r)})
}

func (v *validator) warnf(r hcl.Range, summary, format string, args ...any) {
	v.diags = append(v.diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: rangePtr(r)})
}

func rangePtr(r hcl.Range) *hcl.Range {
	if r.Filename == "" {
		return nil
	}
	return &r
}

func validate(cfg *Config) hcl.Diagnostics {
	v := &validator{cfg: cfg}
	v.names()
	for _, n := range cfg.Nodes {
		v.node(n)
	}
	for _, m := range cfg.Models {
		v.model(m)
	}
	for _, p := range cfg.Pools {
		v.pool(p)
	}
	v.ports()
	v.unusedModels()
	v.settings()
	return v.diags
}

func (v *validator) names() {
	check := func(kind, name string, label hcl.Range, seen map[string]hcl.Range) {
		if err := CheckName(name); err != nil {
			v.errorf(label, "Invalid "+kind+" name", "%s %s.", kind, err)
		}
		if first, dup := seen[name]; dup {
			v.errorf(label, "Duplicate "+kind, "%s %q is already declared at %s; each %s name must be unique.", kind, name, first, kind)
			return
		}
		seen[name] = label
	}
	seen := map[string]hcl.Range{}
	for _, n := range v.cfg.Nodes {
		check("node", n.Name, n.Range("label"), seen)
	}
	seen = map[string]hcl.Range{}
	for _, m := range v.cfg.Models {
		check("model", m.Name, m.Range("label"), seen)
	}
	seen = map[string]hcl.Range{}
	for _, p := range v.cfg.Pools {
		check("pool", p.Name, p.Range("label"), seen)
	}
}

func (v *validator) node(n *Node) {
	r := n.Range
	v.pathLimits(n)
	switch n.Connection {
	case ConnectionLocal:
		if n.Host != "" {
			v.errorf(r("host"), "Host on a local node", "node %q has connection = \"local\", which runs the hive on this machine without SSH; remove host, or set connection = \"ssh\".", n.Name)
		}
		for _, a := range []string{"user", "identity", "port", "insecure_ignore_host_key", "install_mode", "known_hosts"} {
			if _, set := n.ranges[a]; set {
				v.warnf(r(a), "Attribute ignored on a local node", "%s only applies to SSH nodes; node %q has connection = \"local\".", a, n.Name)
			}
		}
	case ConnectionSSH:
		if n.Host == "" {
			if !n.bad["host"] {
				v.errorf(r("connection"), "Missing host", "node %q connects over SSH and needs host = \"<address>\" (an IP or DNS name).", n.Name)
			}
		} else {
			v.host(n)
		}
		if !n.bad["port"] && (n.Port < 1 || n.Port > 65535) {
			v.errorf(r("port"), "Invalid port", "port (SSH) of node %q is %d; allowed: 1-65535 (default 22).", n.Name, n.Port)
		}
		v.user(n)
		if n.Identity != "" && !n.bad["identity"] {
			if fi, err := os.Stat(n.Identity); err != nil {
				v.errorf(r("identity"), "Identity file not found", "identity %q of node %q cannot be read (%v); create it with ssh-keygen, fix the path, or remove identity to use ssh-agent.", n.Identity, n.Name, errReason(err))
			} else if fi.IsDir() {
				v.errorf(r("identity"), "Identity is a folder", "identity %q of node %q is a folder; point it at a private key file such as ~/.ssh/id_ed25519.", n.Identity, n.Name)
			} else if perm := fi.Mode().Perm(); perm&0o077 != 0 {
				v.errorf(r("identity"), "Identity readable by others", "identity %q of node %q has mode %04o, so other users can read the private key and ssh would refuse it; run: chmod 600 %s", n.Identity, n.Name, perm, n.Identity)
			}
		}
		if n.KnownHosts != "" && !n.bad["known_hosts"] {
			if fi, err := os.Stat(n.KnownHosts); err != nil {
				v.errorf(r("known_hosts"), "Known hosts file not found", "known_hosts %q of node %q cannot be read (%v); record the host key with ssh-keyscan -p %d %s >> %s, fix the path, or remove known_hosts to use ~/.ssh/known_hosts.", n.KnownHosts, n.Name, errReason(err), n.Port, n.Host, n.KnownHosts)
			} else if fi.IsDir() {
				v.errorf(r("known_hosts"), "Known hosts is a folder", "known_hosts %q of node %q is a folder; point it at a file such as ~/.ssh/known_hosts.", n.KnownHosts, n.Name)
			}
		}
		if n.InstallMode != InstallSetsid && n.InstallMode != InstallSystemd && !n.bad["install_mode"] {
			v.errorf(r("install_mode"), "Invalid install_mode", "install_mode %q of node %q is not supported; allowed: \"setsid\" (default), \"systemd\".", n.InstallMode, n.Name)
		}
		if n.InsecureIgnoreHostKey {
			v.warnf(r("insecure_ignore_host_key"), "Host key checking disabled", "node %q has insecure_ignore_host_key = true: the SSH host key is not verified against known_hosts, so a machine in the middle could impersonate it.", n.Name)
		}
	case "":
		if !n.bad["connection"] && !n.bad["host"] {
			v.errorf(n.DeclRange, "Missing host", "node %q has neither host nor connection: set host = \"<address>\" to reach it over SSH, or connection = \"local\" to run the hive on this machine.", n.Name)
		}
	default:
		v.errorf(r("connection"), "Invalid connection", "connection %q of node %q is not supported; allowed: \"ssh\" (default when host is set), \"local\".", n.Connection, n.Name)
	}
	if !n.bad["hive_port"] && (n.HivePort < 1024 || n.HivePort > 65535) {
		v.errorf(r("hive_port"), "Invalid port", "hive_port of node %q is %d; allowed: 1024-65535 (default %d).", n.Name, n.HivePort, DefaultHivePort)
	}
	if !n.bad["install_dir"] {
		if err := checkAbsPath(n.InstallDir); err != nil {
			v.errorf(r("install_dir"), "Invalid install_dir", "install_dir of node %q: %v.", n.Name, err)
		}
	}
	if n.Binary != "" && !n.bad["binary"] {
		if fi, err := os.Stat(n.Binary); err != nil {
			v.errorf(r("binary"), "Hive binary not found", "binary %q of node %q cannot be read (%v); build it (just build) or remove binary to copy this rbee executable.", n.Binary, n.Name, errReason(err))
		} else if !fi.Mode().IsRegular() {
			v.errorf(r("binary"), "Hive binary is not a file", "binary %q of node %q is not a regular file.", n.Binary, n.Name)
		}
	}
	v.env(n)
	v.fileRoots(n)
}

func errReason(err error) string {
	if os.IsNotExist(err) {
		return "no such file"
	}
	if os.IsPermission(err) {
		return "permission denied"
	}
	return err.Error()
}

// checkAbsPath accepts a clean absolute path made of characters that are safe
// on a remote command line.
func checkAbsPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty path")
	case len(p) > MaxPathLen:
		return fmt.Errorf("%s is %d bytes long; a path has at most %d (PATH_MAX)", clip(p), len(p), MaxPathLen)
	case !filepath.IsAbs(p):
		return fmt.Errorf("%q is not absolute; use a full path such as /opt/rbee", p)
	case filepath.Clean(p) != p || strings.Contains(p, ".."):
		return fmt.Errorf("%q is not a clean path (no \"..\", \"//\" or trailing \"/\")", p)
	case !pathRe.MatchString(p):
		return fmt.Errorf("%q contains characters that are not allowed in a path (spaces, quotes, shell metacharacters); allowed: letters, digits and _ . / + @ : , = -", p)
	}
	return nil
}

func (v *validator) model(m *Model) {
	r := m.Range
	if v.modelLimits(m) {
		return
	}
	if m.Source == "" {
		if !m.bad["source"] {
			v.errorf(m.DeclRange, "Missing source", "model %q needs source = \"...\": \"hf:org/repo\" (with file), \"file:///absolute/path.gguf\", \"https://host/path.gguf\" or \"synth:name\".", m.Name)
		}
		return
	}
	if err := CheckSource(m.Source); err != nil {
		v.errorf(r("source"), "Invalid model source", "model %q: %v.", m.Name, err)
		return
	}
	isHF := strings.HasPrefix(m.Source, "hf:")
	switch {
	case isHF && m.File == "" && !m.bad["file"]:
		v.errorf(r("source"), "Missing file", "model %q comes from a Hugging Face repository and needs file = \"<name>.gguf\" naming the file in the repository.", m.Name)
	case isHF:
		if m.File != "" && (strings.HasPrefix(m.File, "/") || strings.Contains(m.File, "..") || !pathRe.MatchString(m.File) || path.Clean(m.File) != m.File) {
			v.errorf(r("file"), "Invalid file", "file %q of model %q must be a clean relative path inside the repository (no \"..\", no leading /, no spaces or shell metacharacters).", m.File, m.Name)
		}
		if !revisionRe.MatchString(m.Revision) || strings.Contains(m.Revision, "..") {
			v.errorf(r("revision"), "Invalid revision", "revision %q of model %q must be a branch, tag or commit (letters, digits, . _ / -).", m.Revision, m.Name)
		}
	default:
		if m.File != "" {
			v.errorf(r("file"), "File without a repository", "file only applies to hf: sources; model %q has source %q, which already names the file. Remove file.", m.Name, m.Source)
		}
		if m.Revision != "" {
			v.errorf(r("revision"), "Revision without a repository", "revision only applies to hf: sources; remove it from model %q.", m.Name)
		}
	}
	if m.SHA256 != "" && !sha256Re.MatchString(m.SHA256) {
		v.errorf(r("sha256"), "Invalid sha256", "sha256 of model %q must be 64 hexadecimal characters (the output of sha256sum); got %q.", m.Name, m.SHA256)
	}
}

func (v *validator) pool(p *Pool) {
	r := p.Range
	switch {
	case p.Model == "" && !p.bad["model"]:
		v.errorf(p.DeclRange, "Missing model", "pool %q needs model = \"<name>\" naming a model block. Declared models: %s.", p.Name, v.list(v.modelNames()))
	case p.Model != "" && v.cfg.Model(p.Model) == nil:
		v.errorf(r("model"), "Unknown model", "pool %q uses model %q, which is not declared.%s Declared models: %s.", p.Name, p.Model, suggest(p.Model, v.modelNames()), v.list(v.modelNames()))
	}
	if len(p.Nodes) == 0 && !p.bad["nodes"] {
		v.errorf(r("nodes"), "No nodes", "pool %q needs nodes = [\"<node>\", ...] with at least one node. Declared nodes: %s.", p.Name, v.list(v.nodeNames()))
	}
	seen := map[string]bool{}
	for i, nn := range p.Nodes {
		er := p.Range("nodes")
		if e, ok := p.ranges[fmt.Sprintf("nodes[%d]", i)]; ok {
			er = e
		}
		if seen[nn] {
			v.errorf(er, "Duplicate node in pool", "pool %q lists node %q twice; use replicas for more workers per node.", p.Name, nn)
			continue
		}
		seen[nn] = true
		if v.cfg.Node(nn) == nil {
			v.errorf(er, "Unknown node", "pool %q lists node %q, which is not declared.%s Declared nodes: %s.", p.Name, nn, suggest(nn, v.nodeNames()), v.list(v.nodeNames()))
		}
	}
	if !p.bad["replicas"] && (p.Replicas < 0 || p.Replicas > 1024) {
		v.errorf(r("replicas"), "Invalid replicas", "replicas of pool %q is %d; allowed: 0-1024 workers per node (0 keeps the pool declared with no workers).", p.Name, p.Replicas)
	}
	if !p.bad["backend"] && !slices.Contains(Backends, p.Backend) {
		v.errorf(r("backend"), "Unknown backend", "backend %q of pool %q is not supported; allowed: %s.", p.Backend, p.Name, strings.Join(Backends, ", "))
	}
	if !p.bad["device"] && (p.Device < 0 || p.Device > MaxDevice) {
		v.errorf(r("device"), "Invalid device", "device of pool %q is %d; allowed: a device index 0-%d.", p.Name, p.Device, MaxDevice)
	} else if !p.bad["device"] && !p.bad["backend"] && p.Backend == "cpu" && p.Device != 0 {
		v.errorf(r("device"), "Invalid device", "device of pool %q is %d, but its backend is cpu, which has only device 0; remove device, or set backend = \"cuda\" or \"metal\".", p.Name, p.Device)
	}
	if !p.bad["ctx_size"] && (p.CtxSize < MinCtxSize || p.CtxSize > MaxCtxSize) {
		v.errorf(r("ctx_size"), "Invalid ctx_size", "ctx_size of pool %q is %d; allowed: %d-%d tokens per slot.", p.Name, p.CtxSize, MinCtxSize, MaxCtxSize)
	}
	if !p.bad["slots"] && (p.Slots < 1 || p.Slots > MaxSlots) {
		v.errorf(r("slots"), "Invalid slots", "slots of pool %q is %d; allowed: 1-%d parallel sequences per worker.", p.Name, p.Slots, MaxSlots)
	}
	if !p.bad["threads"] && (p.Threads < 0 || p.Threads > 1024) {
		v.errorf(r("threads"), "Invalid threads", "threads of pool %q is %d; allowed: 0 (auto) to 1024.", p.Name, p.Threads)
	}
	v.poolEngine(p)
	if !p.bad["port"] && p.Port != 0 {
		last := p.Port + max(p.Replicas, 1) - 1
		if p.Port < 1024 || last > 65535 {
			v.errorf(r("port"), "Invalid port", "port of pool %q is %d, so its %d worker(s) per node use ports %d-%d; allowed: 1024-65535 (or 0 to let the hive pick from 8001).", p.Name, p.Port, max(p.Replicas, 1), p.Port, last)
		}
	}
}

func (v *validator) unusedModels() {
	used := map[string]bool{}
	for _, p := range v.cfg.Pools {
		used[p.Model] = true
	}
	for _, m := range v.cfg.Models {
		if !used[m.Name] && v.cfg.Model(m.Name) == m {
			v.warnf(m.Range("label"), "Unused model", "no pool uses model %q, so it is not provisioned anywhere.", m.Name)
		}
	}
}

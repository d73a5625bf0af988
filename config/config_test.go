package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func parse(t *testing.T, src string, opts LoadOptions) (*Config, Diagnostics) {
	t.Helper()
	if opts.Environ == nil {
		opts.Environ = []string{"HOME=/home/test"}
	}
	if opts.StateDir == "" {
		opts.StateDir = "/srv/.rbee"
	}
	return Parse(map[string][]byte{"rbee.hcl": []byte(src)}, opts)
}

func TestExampleIsValid(t *testing.T) {
	cfg, diags := Load("../rbee.hcl.example", LoadOptions{StateDir: "/srv/.rbee"})
	if diags.HasErrors() {
		var sb strings.Builder
		_ = diags.Write(&sb, false)
		t.Fatalf("example does not load:\n%s", sb.String())
	}
	n := cfg.Node("local")
	if n == nil || n.Connection != ConnectionLocal || n.InstallDir != "/srv/.rbee/nodes/local" || n.HivePort != 9200 {
		t.Fatalf("node local = %+v", n)
	}
	p := cfg.Pool("chat")
	if p == nil || p.Model != "tiny" || p.Replicas != 1 || p.Slots != 2 || p.CtxSize != 1024 || p.Backend != "cpu" {
		t.Fatalf("pool chat = %+v", p)
	}
	if m := cfg.Model("tiny"); m == nil || m.Source != "synth:tiny" {
		t.Fatalf("model tiny = %+v", m)
	}
}

func TestDefaults(t *testing.T) {
	cfg, diags := parse(t, `
node "gpu1" { host = "10.0.0.5" }
model "m" {
  source = "hf:org/repo"
  file   = "m.gguf"
}
pool "p" {
  model = "m"
  nodes = ["gpu1"]
}`, LoadOptions{})
	if diags.HasErrors() {
		t.Fatal(diags.Diags)
	}
	n := cfg.Node("gpu1")
	if n.Connection != ConnectionSSH || n.Port != 22 || n.HivePort != 9200 || n.InstallDir != "/opt/rbee" || n.InstallMode != InstallSetsid {
		t.Errorf("node defaults: %+v", n)
	}
	if m := cfg.Model("m"); m.Revision != "main" {
		t.Errorf("revision default: %q", m.Revision)
	}
	p := cfg.Pool("p")
	if p.Replicas != 1 || p.Backend != "cpu" || p.Device != 0 || p.CtxSize != 2048 || p.Slots != 4 || p.Threads != 0 {
		t.Errorf("pool defaults: %+v", p)
	}
}

func TestVariablePrecedence(t *testing.T) {
	dir := t.TempDir()
	varFile := filepath.Join(dir, "vars.hcl")
	if err := os.WriteFile(varFile, []byte("ctx = 512\nhost = \"from-file\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := `
variable "host" { default = "from-default" }
variable "ctx" { default = 2048 }
variable "token" { default = "" }
node "n" {
  host = var.host
  env  = { TOKEN = var.token, HOME_DIR = env("HOME"), UP = upper("x") }
}
model "m" { source = "synth:tiny" }
pool "p" {
  model    = "m"
  nodes    = ["n"]
  ctx_size = var.ctx
}`
	tests := []struct {
		name     string
		opts     LoadOptions
		wantHost string
		wantCtx  int
	}{
		{"default", LoadOptions{}, "from-default", 2048},
		{"env", LoadOptions{Environ: []string{"RBEE_VAR_host=from-env", "RBEE_VAR_ctx=1024"}}, "from-env", 1024},
		{"file beats env", LoadOptions{Environ: []string{"RBEE_VAR_host=from-env"}, VarFiles: []string{varFile}}, "from-file", 512},
		{"flag beats file", LoadOptions{VarFiles: []string{varFile}, Vars: []string{"host=from-flag", "ctx=4096"}}, "from-flag", 4096},
		{"last flag wins", LoadOptions{Vars: []string{"host=a", "host=b"}}, "b", 2048},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Environ = append(tt.opts.Environ, "HOME=/home/test")
			cfg, diags := parse(t, src, tt.opts)
			if diags.HasErrors() {
				t.Fatal(diags.Diags)
			}
			if got := cfg.Node("n").Host; got != tt.wantHost {
				t.Errorf("host = %q, want %q", got, tt.wantHost)
			}
			if got := cfg.Pool("p").CtxSize; got != tt.wantCtx {
				t.Errorf("ctx = %d, want %d", got, tt.wantCtx)
			}
			if got := cfg.Node("n").Env["HOME_DIR"]; got != "/home/test" {
				t.Errorf("env() = %q", got)
			}
			if got := cfg.Node("n").Env["UP"]; got != "X" {
				t.Errorf("upper() = %q", got)
			}
		})
	}
}

func TestVariableErrors(t *testing.T) {
	src := `variable "need" {}
variable "n" { default = 1 }
node "local" { connection = "local" }`
	_, diags := parse(t, src, LoadOptions{Vars: []string{"nope=1", "n=abc", "bad"}})
	msg := render(diags)
	for _, want := range []string{"No value for required variable", `no variable "nope"`, "not a valid number", "must have the form name=value"} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
}

func render(d Diagnostics) string {
	var sb strings.Builder
	_ = d.Write(&sb, false)
	return sb.String()
}

// TestValidation checks that each kind of mistake is reported, anchored to
// the right line, and that all of them are reported at once.
func TestValidation(t *testing.T) {
	dir := t.TempDir()
	src := `node "gpu1" {
  host      = "10.0.0.5"
  hive_port = 80
  identity  = "` + dir + `/missing_key"
}
node "gpu1" { host = "10.0.0.6" }
node "Bad_Name" { connection = "local" }
node "a" {
  connection = "local"
  hive_port  = 9300
}
node "b" {
  connection = "local"
  hive_port  = 9300
}
model "m" { source = "ftp://example.com/x.gguf" }
model "hf" { source = "hf:org/repo" }
pool "p" {
  model    = "nope"
  nodes    = ["gpu1", "gpu9"]
  replicas = -1
  backend  = "rocm"
}
pool "q" {
  model = "m"
  nodes = ["a"]
  port  = 9300
}
node "c" {
  host     = "10.0.0.7"
  identity = "` + dir + `/open_key"
}
`
	if err := os.WriteFile(filepath.Join(dir, "open_key"), []byte("key"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, diags := parse(t, src, LoadOptions{})
	if !diags.HasErrors() {
		t.Fatal("no errors")
	}
	msg := render(diags)
	cases := []struct{ want, line string }{
		{"Invalid port", "rbee.hcl:3:15"},
		{"Identity file not found", "rbee.hcl:4:15"},
		{"Duplicate node", "rbee.hcl:6:6"},
		{"Invalid node name", "rbee.hcl:7:6"},
		{"Conflicting ports", "rbee.hcl:14:16"},
		{"Invalid model source", "rbee.hcl:16:22"},
		{"Missing file", "rbee.hcl:17:23"},
		{"Unknown model", "rbee.hcl:19:14"},
		{"Unknown node", "rbee.hcl:20:23"},
		{"Invalid replicas", "rbee.hcl:21:14"},
		{"Unknown backend", "rbee.hcl:22:14"},
		{"Conflicting ports", "rbee.hcl:27:11"},
		{"Identity readable by others", "rbee.hcl:31:14"},
	}
	for _, c := range cases {
		if !strings.Contains(msg, "Error: "+c.line+": "+c.want) {
			t.Errorf("missing %q at %s in:\n%s", c.want, c.line, msg)
		}
	}
	if !strings.Contains(msg, "allowed: cpu, cuda, metal") {
		t.Errorf("backend message does not list what is allowed:\n%s", msg)
	}
	if !strings.Contains(msg, `3 |   hive_port = 80`) || !strings.Contains(msg, "^^") {
		t.Errorf("no source snippet:\n%s", msg)
	}
}

func TestSuggestion(t *testing.T) {
	_, diags := parse(t, `node "local" { connection = "local" }
model "tinyllama" { source = "synth:tiny" }
pool "p" {
  model = "tinylama"
  nodes = ["lokal"]
}`, LoadOptions{})
	msg := render(diags)
	for _, want := range []string{`Did you mean "tinyllama"?`, `Did you mean "local"?`} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
}

func TestSyntaxAndSchemaErrors(t *testing.T) {
	for name, tc := range map[string]struct{ src, want string }{
		"syntax":        {"node \"x\" {\n  host = \n}\n", "rbee.hcl:2:"},
		"unknown block": {`nod "x" {}`, "Unsupported block type"},
		"unknown attr":  {`node "x" { hots = "a" }`, `Did you mean "host"?`},
		"wrong type":    {"node \"x\" {\nhost = \"h\"\nport = \"abc\"\n}", "rbee.hcl:3:8: Incorrect attribute value type"},
		"bad duration":  {"node \"x\" { connection = \"local\" }\nmodel \"m\" { source = \"synth:t\" }\npool \"p\" {\n model = \"m\"\n nodes = [\"x\"]\n idle_timeout = \"soon\"\n}", "Invalid duration"},
		"unknown var":   {"variable \"host\" {}\nnode \"x\" { host = var.hots }", `rbee.hcl:2:19: Undeclared variable`},
		"unknown var 2": {"variable \"host\" {}\nnode \"x\" { host = var.hots }", `Did you mean "host"? Declare it with variable "hots"`},
		"no host":       {`node "x" {}`, "neither host nor connection"},
		"local + host":  {`node "x" {` + "\n" + `connection = "local"` + "\n" + `host = "h" }`, "Host on a local node"},
		"bad sha":       {"model \"m\" {\n source = \"synth:t\"\n sha256 = \"abc\"\n}", "Invalid sha256"},
		"relative dir":  {`node "x" {` + "\n" + `host = "h"` + "\n" + `install_dir = "opt/rbee" }`, "is not absolute"},
		"shell chars":   {`node "x" {` + "\n" + `host = "h"` + "\n" + `install_dir = "/opt/$(reboot)" }`, "not allowed in a path"},
		"ssh port 0":    {`node "x" {` + "\n" + `host = "h"` + "\n" + `port = 0 }`, "allowed: 1-65535"},
	} {
		t.Run(name, func(t *testing.T) {
			_, diags := parse(t, tc.src, LoadOptions{})
			msg := render(diags)
			if !diags.HasErrors() || !strings.Contains(msg, tc.want) {
				t.Errorf("want %q in:\n%s", tc.want, msg)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	cfg, diags := parse(t, `node "x" {
  host = "h"
  insecure_ignore_host_key = true
}
model "unused" { source = "synth:tiny" }`, LoadOptions{})
	if diags.HasErrors() || cfg == nil {
		t.Fatal(render(diags))
	}
	msg := render(diags)
	if diags.Warnings() != 2 || !strings.Contains(msg, "Host key checking disabled") || !strings.Contains(msg, "Unused model") {
		t.Errorf("warnings:\n%s", msg)
	}
}

func TestCheckSource(t *testing.T) {
	good := []string{"hf:TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF", "file:///models/x.gguf", "https://example.com/x.gguf", "synth:tiny", "http://127.0.0.1:8080/x.gguf"}
	bad := []string{"", "tiny", "hf:noslash", "hf:a/b/c", "file://relative/x.gguf", "file:///a/../b.gguf", "ftp://x/y", "http://example.com/x.gguf", "https://user:pw@h/x", "synth:", "synth:UPPER", "hf:a/b\n"}
	for _, s := range good {
		if err := CheckSource(s); err != nil {
			t.Errorf("CheckSource(%q) = %v", s, err)
		}
	}
	for _, s := range bad {
		if err := CheckSource(s); err == nil {
			t.Errorf("CheckSource(%q) accepted", s)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, s := range []string{"a", "gpu-1", "x0", strings.Repeat("a", 63)} {
		if CheckName(s) != nil {
			t.Errorf("%q rejected", s)
		}
	}
	for _, s := range []string{"", "-a", "a-", "A", "a_b", "a.b", strings.Repeat("a", 64), "a b"} {
		if CheckName(s) == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestFolderAndHash(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("nodes.hcl", `node "local" { connection = "local" }`)
	write("pools.hcl", "model \"tiny\" { source = \"synth:tiny\" }\npool \"chat\" {\n  model = \"tiny\"\n  nodes = [\"local\"]\n  idle_timeout = \"15m\"\n}\n")
	write("notes.txt", "ignored")
	cfg, diags := Load(dir, LoadOptions{})
	if diags.HasErrors() {
		t.Fatal(render(diags))
	}
	if len(cfg.Files) != 2 || cfg.Pool("chat").IdleTimeout != 15*time.Minute {
		t.Fatalf("files %v, pool %+v", cfg.Files, cfg.Pool("chat"))
	}
	if want := filepath.Join(dir, ".rbee", "nodes", "local"); cfg.Node("local").InstallDir != want {
		t.Errorf("local install dir %q, want %q", cfg.Node("local").InstallDir, want)
	}
	h1 := cfg.Hash()
	write("pools.hcl", "model \"tiny\" { source = \"synth:tiny\" }\npool \"chat\" {\n  model = \"tiny\"\n  nodes = [\"local\"]\n  idle_timeout = \"16m\"\n}\n")
	cfg2, _ := Load(dir, LoadOptions{})
	if cfg2.Hash() == h1 {
		t.Error("hash did not change with the configuration")
	}
	cfg3, _ := Load(dir, LoadOptions{})
	if cfg3.Hash() != cfg2.Hash() {
		t.Error("hash is not stable")
	}
}

func TestFormat(t *testing.T) {
	src := []byte("node \"local\" {\nconnection=\"local\"\n    hive_port = 9200\n}\n")
	out, diags := Format("rbee.hcl", src)
	if diags.HasErrors() {
		t.Fatal(render(diags))
	}
	want := "node \"local\" {\n  connection = \"local\"\n  hive_port  = 9200\n}\n"
	if string(out) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out, want)
	}
	d := UnifiedDiff("a", "b", src, out)
	for _, line := range []string{"--- a", "+++ b", "@@ -1,4 +1,4 @@", "-connection=\"local\"", "+  connection = \"local\"", " node \"local\" {"} {
		if !strings.Contains(d, line+"\n") {
			t.Errorf("diff misses %q:\n%s", line, d)
		}
	}
	if del, add := strings.Index(d, "-connection"), strings.Index(d, "+  connection"); del > add {
		t.Errorf("the removed line comes after the added one, unlike diff -u:\n%s", d)
	}
	if UnifiedDiff("a", "b", out, out) != "" {
		t.Error("diff of equal inputs is not empty")
	}
	if _, diags := Format("bad.hcl", []byte("node {")); !diags.HasErrors() {
		t.Error("syntax error not reported")
	}
}

// TestPoolLimits checks that pool attributes are held to the limits a hive
// enforces on PUT /v1/workers: a file that validates must never be refused
// there at apply time.
func TestPoolLimits(t *testing.T) {
	pool := func(attr string) string {
		return "node \"x\" { connection = \"local\" }\nmodel \"m\" { source = \"synth:tiny\" }\npool \"p\" {\n  model = \"m\"\n  nodes = [\"x\"]\n  " + attr + "\n}\n"
	}
	for _, tc := range []struct {
		attr, want string // want "" means valid
	}{
		{"slots = 64", ""},
		{"slots = 65", "Invalid slots"},
		{"ctx_size = 64", ""},
		{"ctx_size = 32", "Invalid ctx_size"},
		{"ctx_size = 1048576", ""},
		{"ctx_size = 1048577", "Invalid ctx_size"},
		{"device = 1", "backend is cpu, which has only device 0"},
		{"backend = \"cuda\"\n  device = 63", ""},
		{"backend = \"cuda\"\n  device = 64", "Invalid device"},
		{"backend = \"cuda\"\n  gpu_layers = 20", ""},
		{"backend = \"cuda\"\n  gpu_layers = -1", "Invalid gpu_layers"},
		{"gpu_layers = 20", "gpu_layers needs a GPU backend"},
	} {
		t.Run(tc.attr, func(t *testing.T) {
			_, diags := parse(t, pool(tc.attr), LoadOptions{})
			msg := render(diags)
			switch {
			case tc.want == "" && diags.HasErrors():
				t.Errorf("want no error, got:\n%s", msg)
			case tc.want != "" && !strings.Contains(msg, tc.want):
				t.Errorf("want %q in:\n%s", tc.want, msg)
			}
		})
	}
}

// Pool port ranges on one machine may overlap neither each other nor a
// hive_port; on different machines they may.
func TestPoolPortConflicts(t *testing.T) {
	nodes := "node \"a\" { connection = \"local\" }\nnode \"r\" { host = \"10.0.0.5\" }\nmodel \"m\" { source = \"synth:tiny\" }\n"
	tests := []struct{ name, pools, want string }{
		{"ranges overlap", `pool "p" {
  model = "m"
  nodes = ["a"]
  replicas = 2
  port = 8100
}
pool "q" {
  model = "m"
  nodes = ["a"]
  port = 8101
}`, "rbee.hcl:13:10: Conflicting ports"},
		{"range reaches the hive_port", `pool "p" {
  model = "m"
  nodes = ["r"]
  replicas = 3
  port = 9198
}`, "rbee.hcl:8:10: Conflicting ports"},
		{"other machine", `pool "p" {
  model = "m"
  nodes = ["a"]
  replicas = 2
  port = 8100
}
pool "q" {
  model = "m"
  nodes = ["r"]
  port = 8100
}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := parse(t, nodes+tt.pools, LoadOptions{})
			msg := render(diags)
			if tt.want == "" {
				if diags.HasErrors() {
					t.Fatalf("unexpected errors:\n%s", msg)
				}
				return
			}
			if !strings.Contains(msg, "Error: "+tt.want) {
				t.Fatalf("want %q in:\n%s", tt.want, msg)
			}
		})
	}
}

// known_hosts is ~ expanded, must name an existing file, and is ignored (with
// a warning) on a local node.
func TestKnownHosts(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "kh"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	opts := LoadOptions{Environ: []string{"HOME=" + home}}
	cfg, diags := parse(t, "node \"n\" {\n  host        = \"10.0.0.5\"\n  known_hosts = \"~/kh\"\n}\n", opts)
	if diags.HasErrors() {
		t.Fatal(render(diags))
	}
	if got := cfg.Node("n").KnownHosts; got != filepath.Join(home, "kh") {
		t.Errorf("known_hosts = %q, want %q", got, filepath.Join(home, "kh"))
	}
	_, diags = parse(t, "node \"n\" {\n  host        = \"10.0.0.5\"\n  known_hosts = \"~/missing\"\n}\n", opts)
	if msg := render(diags); !strings.Contains(msg, "Error: rbee.hcl:3:17: Known hosts file not found") || !strings.Contains(msg, "ssh-keyscan -p 22 10.0.0.5") {
		t.Errorf("missing known_hosts file:\n%s", msg)
	}
	_, diags = parse(t, "node \"n\" {\n  host        = \"10.0.0.5\"\n  known_hosts = \"~\"\n}\n", opts)
	if msg := render(diags); !strings.Contains(msg, "Error: rbee.hcl:3:17: Known hosts is a folder") {
		t.Errorf("known_hosts folder:\n%s", msg)
	}
	_, diags = parse(t, "node \"l\" {\n  connection  = \"local\"\n  known_hosts = \"~/kh\"\n}\n", opts)
	if msg := render(diags); diags.HasErrors() || !strings.Contains(msg, "rbee.hcl:3:17: Attribute ignored on a local node") {
		t.Errorf("known_hosts on a local node:\n%s", msg)
	}
}

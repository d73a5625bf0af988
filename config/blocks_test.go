package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

const localFleet = "node \"local\" { connection = \"local\" }\n"

func TestGatewayAndWatchDefaults(t *testing.T) {
	cfg, diags := parse(t, localFleet, LoadOptions{})
	if diags.HasErrors() {
		t.Fatal(render(diags))
	}
	if cfg.Gateway != nil || cfg.State != nil || cfg.Watch.AllowDestroy {
		t.Fatalf("without the blocks: gateway %+v, state %+v, watch %+v", cfg.Gateway, cfg.State, cfg.Watch)
	}
	cfg, diags = parse(t, localFleet+"gateway {}\nwatch {}\n", LoadOptions{})
	if diags.HasErrors() {
		t.Fatal(render(diags))
	}
	g := cfg.Gateway
	if g == nil || g.Listen != "127.0.0.1:8080" || g.Queue != 64 || g.QueueTimeout != 30*time.Second || g.APIKeysFile != "" {
		t.Fatalf("gateway defaults: %+v", g)
	}
	if cfg.Watch.AllowDestroy {
		t.Fatal("allow_destroy defaults to true")
	}
}

func TestGatewayAndWatchSet(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "keys"), []byte("k1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags := parse(t, localFleet+`gateway {
  listen        = "0.0.0.0:9090"
  api_keys_file = "~/keys"
  queue         = 0
  queue_timeout = "2m"
}
watch { allow_destroy = true }
`, LoadOptions{Environ: []string{"HOME=" + home}})
	if diags.HasErrors() {
		t.Fatal(render(diags))
	}
	g := cfg.Gateway
	if g.Listen != "0.0.0.0:9090" || g.APIKeysFile != filepath.Join(home, "keys") || g.Queue != 0 || g.QueueTimeout != 2*time.Minute {
		t.Fatalf("gateway: %+v", g)
	}
	if !cfg.Watch.AllowDestroy {
		t.Fatal("allow_destroy not read")
	}
}

func TestStateBackend(t *testing.T) {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"ca.pem": 0o644, "client.pem": 0o644, "client.key": 0o600, "password": 0o400} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
	}
	cfg, diags := parse(t, localFleet+`state "etcd" {
  endpoints     = ["https://etcd1:2379", "https://[2001:db8::1]:2379", "http://127.0.0.1:2379"]
  ca_file       = "~/ca.pem"
  cert_file     = "~/client.pem"
  key_file      = "~/client.key"
  username      = "rbee"
  password_file = "~/password"
}
`, LoadOptions{Environ: []string{"HOME=" + dir}})
	if diags.HasErrors() {
		t.Fatal(render(diags))
	}
	s := cfg.State
	want := &StateBackend{Type: "etcd", Endpoints: []string{"https://etcd1:2379", "https://[2001:db8::1]:2379", "http://127.0.0.1:2379"}, Prefix: "rbee",
		CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "client.pem"), KeyFile: filepath.Join(dir, "client.key"),
		Username: "rbee", PasswordFile: filepath.Join(dir, "password")}
	if s.Type != want.Type || !slices.Equal(s.Endpoints, want.Endpoints) || s.Prefix != want.Prefix || s.CAFile != want.CAFile ||
		s.CertFile != want.CertFile || s.KeyFile != want.KeyFile || s.Username != want.Username || s.PasswordFile != want.PasswordFile || s.Insecure {
		t.Fatalf("state = %+v\nwant  %+v", s, want)
	}
	cfg, diags = parse(t, localFleet+"state \"etcd\" {\n  endpoints = [\"http://10.0.0.9:2379\"]\n  insecure = true\n  prefix = \"fleets/prod\"\n}\n", LoadOptions{})
	if diags.HasErrors() {
		t.Fatal(render(diags))
	}
	if !cfg.State.Insecure || cfg.State.Prefix != "fleets/prod" {
		t.Fatalf("state = %+v", cfg.State)
	}
}

// TestBlockDiagnostics: each mistake in the gateway, watch and state blocks
// and in file_roots is reported at its line, saying what is allowed.
func TestBlockDiagnostics(t *testing.T) {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"open_keys": 0o644, "keys": 0o600, "open.key": 0o640, "c.pem": 0o644} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct{ name, src, want, detail string }{
		{"gateway open without keys", "gateway {\n  listen = \":8080\"\n}", "Error: rbee.hcl:3:12: Missing api_keys_file", "which other machines can reach"},
		{"gateway on an address without keys", "gateway {\n  listen = \"10.0.0.1:8080\"\n}", "Error: rbee.hcl:3:12: Missing api_keys_file", "api_keys_file = \"<path>\""},
		{"gateway keys readable by others", "gateway {\n  listen = \":8080\"\n  api_keys_file = \"~/open_keys\"\n}", "Error: rbee.hcl:4:19: File readable by others", "chmod 600"},
		{"gateway keys missing", "gateway {\n  api_keys_file = \"~/nope\"\n}", "Warning: rbee.hcl:3:19: File not found", "no such file"},
		{"gateway keys a folder", "gateway {\n  api_keys_file = \"~\"\n}", "Error: rbee.hcl:3:19: Path is a folder", "point it at a file"},
		{"gateway listen not host:port", "gateway {\n  listen = \"8080\"\n}", "Error: rbee.hcl:3:12: Invalid listen", "not host:port"},
		{"gateway listen port", "gateway {\n  listen = \"127.0.0.1:99999\"\n}", "Error: rbee.hcl:3:12: Invalid listen", "allowed: 1-65535"},
		{"gateway queue too long", "gateway {\n  queue = 100001\n}", "Error: rbee.hcl:3:11: Invalid queue", "to 100000 requests"},
		{"gateway queue negative", "gateway {\n  queue = -1\n}", "Error: rbee.hcl:3:11: Invalid queue", "allowed: 0"},
		{"gateway queue_timeout", "gateway {\n  queue_timeout = \"soon\"\n}", "Error: rbee.hcl:3:19: Invalid duration", "positive duration"},
		{"gateway unknown attribute", "gateway {\n  port = 80\n}", "Error: rbee.hcl:3:3: Unsupported argument", "not expected here"},
		{"two gateways", "gateway {}\ngateway {}", "Error: rbee.hcl:3:1: Duplicate gateway block", "already declared at rbee.hcl:2,1-8"},
		{"watch allow_destroy type", "watch {\n  allow_destroy = \"maybe\"\n}", "Error: rbee.hcl:3:19: Incorrect attribute value type", "must be a bool"},
		{"two watches", "watch {}\nwatch { allow_destroy = true }", "Error: rbee.hcl:3:1: Duplicate watch block", "at most one"},
		{"unknown state backend", "state \"consul\" {\n  address = \"x\"\n}", "Error: rbee.hcl:2:7: Unknown state backend", "known: etcd"},
		{"etcd without endpoints", "state \"etcd\" {}", "Error: rbee.hcl:2:1: Missing endpoints", "at least one member"},
		{"etcd endpoint without scheme", "state \"etcd\" {\n  endpoints = [\"https://a:2379\", \"etcd1:2379\"]\n}", "Error: rbee.hcl:3:34: Invalid endpoint", "use https://host:2379"},
		{"etcd endpoint without port", "state \"etcd\" {\n  endpoints = [\"https://etcd1\"]\n}", "Error: rbee.hcl:3:16: Invalid endpoint", "https://etcd1:2379"},
		{"etcd endpoint with a path", "state \"etcd\" {\n  endpoints = [\"https://etcd1:2379/v3\"]\n}", "Error: rbee.hcl:3:16: Invalid endpoint", "no user, path or query"},
		{"etcd plain http", "state \"etcd\" {\n  endpoints = [\"http://10.0.0.9:2379\"]\n}", "Error: rbee.hcl:3:16: Invalid endpoint", "set insecure = true"},
		{"etcd endpoint twice", "state \"etcd\" {\n  endpoints = [\"https://a:2379\",\n    \"https://a:2379\"]\n}", "Error: rbee.hcl:4:5: Duplicate endpoint", "twice"},
		{"etcd prefix", "state \"etcd\" {\n  endpoints = [\"https://a:2379\"]\n  prefix = \"/x/../y\"\n}", "Error: rbee.hcl:4:12: Invalid prefix", "without \"..\""},
		{"etcd cert without key", "state \"etcd\" {\n  endpoints = [\"https://a:2379\"]\n  cert_file = \"~/c.pem\"\n}", "Error: rbee.hcl:4:15: Missing key_file", "set both, or neither"},
		{"etcd password without user", "state \"etcd\" {\n  endpoints = [\"https://a:2379\"]\n  password_file = \"~/keys\"\n}", "Error: rbee.hcl:4:19: Missing username", "set both"},
		{"etcd key readable by others", "state \"etcd\" {\n  endpoints = [\"https://a:2379\"]\n  cert_file = \"~/c.pem\"\n  key_file = \"~/open.key\"\n}", "Error: rbee.hcl:5:14: File readable by others", "mode 0640"},
		{"etcd missing ca", "state \"etcd\" {\n  endpoints = [\"https://a:2379\"]\n  ca_file = \"~/none.pem\"\n}", "Error: rbee.hcl:4:13: File not found", "no such file"},
		{"two states", "state \"etcd\" {\n  endpoints = [\"https://a:2379\"]\n}\nstate \"etcd\" {}", "Error: rbee.hcl:5:1: Duplicate state block", "at most one"},
		{"file_roots relative", "node \"n\" {\n  connection = \"local\"\n  file_roots = [\"/models\", \"data\"]\n}", "Error: rbee.hcl:3:28: Invalid file_roots", "is not absolute"},
		{"file_roots not clean", "node \"n\" {\n  connection = \"local\"\n  file_roots = [\"/models/\"]\n}", "Error: rbee.hcl:3:17: Invalid file_roots", "not a clean path"},
		{"file_roots twice", "node \"n\" {\n  connection = \"local\"\n  file_roots = [\"/m\", \"/m\"]\n}", "Error: rbee.hcl:3:23: Duplicate file root", "twice"},
		{"file_roots type", "node \"n\" {\n  connection = \"local\"\n  file_roots = \"/m\"\n}", "Error: rbee.hcl:3:16: Incorrect attribute value type", "list of strings"},
		{"model outside file_roots", "node \"n\" {\n  connection = \"local\"\n  file_roots = [\"/models\"]\n}\nmodel \"m\" { source = \"file:///models-old/m.gguf\" }\npool \"p\" {\n  model = \"m\"\n  nodes = [\"n\"]\n}",
			"Error: rbee.hcl:5:22: Model outside file_roots", "outside the file_roots of node \"n\" (/models)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := c.src
			if !hasNode(src) {
				src = localFleet + src
			}
			_, diags := parse(t, src, LoadOptions{Environ: []string{"HOME=" + dir}})
			expectDiag(t, diags, c.want, c.detail)
		})
	}
}

func hasNode(src string) bool { return len(src) > 5 && src[:5] == "node " }

func TestFileRootsAllowTheirModels(t *testing.T) {
	cfg, diags := parse(t, `node "n" {
  connection = "local"
  file_roots = ["/models", "/srv/gguf"]
}
model "m" { source = "file:///srv/gguf/team/m.gguf" }
pool "p" {
  model = "m"
  nodes = ["n"]
}`, LoadOptions{})
	if diags.HasErrors() {
		t.Fatal(render(diags))
	}
	if got := cfg.Node("n").FileRoots; !slices.Equal(got, []string{"/models", "/srv/gguf"}) {
		t.Fatalf("file_roots = %v", got)
	}
}

// TestSettingsAreNotInTheHash: the gateway, watch and state blocks change
// how rbee runs, not what runs, so a saved plan stays valid across them;
// file_roots changes what a hive accepts, so it is in the hash.
func TestSettingsAreNotInTheHash(t *testing.T) {
	hash := func(src string) string {
		t.Helper()
		cfg, diags := parse(t, src, LoadOptions{})
		if diags.HasErrors() {
			t.Fatal(render(diags))
		}
		return cfg.Hash()
	}
	base := hash(localFleet)
	for _, extra := range []string{"gateway {\n  queue = 5\n}\n", "watch {\n  allow_destroy = true\n}\n", "state \"etcd\" {\n  endpoints = [\"https://a:2379\"]\n}\n"} {
		if h := hash(localFleet + extra); h != base {
			t.Errorf("%q changes the hash", extra)
		}
	}
	if hash("node \"local\" {\n  connection = \"local\"\n  file_roots = [\"/m\"]\n}\n") == base {
		t.Error("file_roots does not change the hash")
	}
}

package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// loadTimeout bounds one Load of a fuzz input: the loader's time is linear
// in its input, which is at most MaxConfigBytes.
const loadTimeout = 30 * time.Second

// hostileSeeds are the shapes of input that crashed, hung or misread before
// the loader bounded them, plus the new blocks.
func hostileSeeds() []string {
	deep := func(open, mid, close string, n int) string {
		return "locals { x = " + strings.Repeat(open, n) + mid + strings.Repeat(close, n) + " }\n"
	}
	// Past every bound, yet small enough for the fuzzer to mutate quickly
	// (TestHostileShapes checks the 70,000-deep originals).
	const n = 3000
	fleet := "# fleet\nnode \"local\" {\n  connection = \"local\"\n}\nmodel \"m\" { source = \"synth:tiny\" }\npool \"p\" {\n  model = \"m\"\n  nodes = [\"local\"]\n}\n"
	var utf16 []byte
	for _, c := range []byte(fleet) {
		utf16 = append(utf16, c, 0)
	}
	big := strings.Repeat("a", 40<<10)
	return []string{
		deep("[", "", "]", n),
		deep("(", "1", ")", n),
		deep("{a=", "1", "}", n),
		deep(`"${`, "1", `}"`, n),
		deep("lower(", `"a"`, ")", n),
		"locals { x = \"" + strings.Repeat("%{if true}", n) + strings.Repeat("%{endif}", n) + "\" }\n",
		"node \"a\" " + strings.Repeat("{ b ", n) + strings.Repeat("}", n),
		"locals { x = " + strings.Repeat("!", n) + "true }\n",
		"locals { x = " + strings.Repeat("-", n) + "1 }\n",
		"locals { x = 1" + strings.Repeat("+1", n) + " }\n",
		"locals { x = " + strings.Repeat("true ? 1 : ", n) + "1 }\n",
		"locals { x = [[1]]" + strings.Repeat("[0]", n) + " }\n",
		"locals {\n" + strings.Repeat("a = local.a\n", 100) + "}\n",
		strings.ReplaceAll(fleet, "\n", "\r"),
		strings.ReplaceAll(fleet, "\n", "\r\n"),
		"\xEF\xBB\xBF" + fleet,
		"\xFF\xFE" + string(utf16),
		string(utf16),
		fleet + "\x00",
		"/* " + fleet,
		"x = <<EOT\n" + fleet,
		"node \"n\" {\n  host = \"" + big + "\"\n  user = \"" + big[:5000] + "\"\n  install_dir = \"/" + big + "\"\n  env = { " + big[:300] + " = \"" + big + "\" }\n}\n",
		fleet + "gateway {\n  listen = \":8080\"\n  api_keys_file = \"~/keys\"\n  queue = 1e9\n  queue_timeout = \"-1s\"\n}\ngateway {}\n",
		fleet + "watch { allow_destroy = null }\nstate \"etcd\" {\n  endpoints = [\"http://10.0.0.1:2379\", null, \"https://[::1]:0\"]\n  prefix = \"\"\n  key_file = \"~\"\n}\nstate \"zk\" {}\n",
		"node \"n\" {\n  connection = \"local\"\n  file_roots = [\"/\", \"\", \"/a/../b\"]\n}\nmodel \"m\" { source = \"file:///x.gguf\" }\npool \"p\" {\n  model = \"m\"\n  nodes = [\"n\"]\n}\n",
	}
}

// FuzzLoad writes arbitrary bytes to a file and loads it as a configuration
// (and formats it): Load must return diagnostics or a configuration, in
// bounded time, and never panic or overflow the stack. `go test` runs the
// seeds; `go test -fuzz FuzzLoad ./config/` explores.
func FuzzLoad(f *testing.F) {
	for _, s := range hostileSeeds() {
		f.Add([]byte(s))
	}
	if b, err := os.ReadFile("../rbee.hcl.example"); err == nil {
		f.Add(b)
	}
	home := f.TempDir()
	f.Fuzz(func(t *testing.T, src []byte) {
		path := filepath.Join(t.TempDir(), "rbee.hcl")
		if err := os.WriteFile(path, src, 0o600); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		var cfg *Config
		var diags Diagnostics
		go func() {
			defer close(done)
			cfg, diags = Load(path, LoadOptions{Environ: []string{"HOME=" + home}, StateDir: home})
			_, _ = Format(path, src)
		}()
		select {
		case <-done:
		case <-time.After(loadTimeout):
			t.Fatalf("Load of %d bytes did not return within %s", len(src), loadTimeout)
		}
		if cfg == nil && !diags.HasErrors() {
			t.Fatal("no configuration and no error")
		}
		_ = diags.Write(discard{}, true)
		if cfg != nil {
			_ = cfg.Hash()
			_ = cfg.Placements()
		}
	})
}

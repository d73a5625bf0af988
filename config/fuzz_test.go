package config

import (
	"os"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the decoder and validator: they must
// report diagnostics, never panic.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("../rbee.hcl.example"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`node "gpu1" { host = "10.0.0.5" port = 22 }`))
	f.Add([]byte("variable \"x\" { default = 1 }\npool \"p\" {\n model = \"m\"\n nodes = [var.x, null]\n replicas = 1e99\n}"))
	f.Add([]byte("node \"a\" {\n env = { \"1\" = \"\\u0000\" }\n hive_port = -1\n}\nmodel \"m\" { source = \"hf:a/b\" file = \"../x\" }"))
	f.Add([]byte(`pool "p" { nodes = ["a", "a"] port = 65535 replicas = 3 idle_timeout = "-1s" }`))
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, diags := Parse(map[string][]byte{"fuzz.hcl": src}, LoadOptions{Environ: []string{}, StateDir: "/s"})
		if cfg == nil && !diags.HasErrors() {
			t.Fatal("no config and no error")
		}
		_ = diags.Write(discard{}, true)
		if cfg != nil {
			_ = cfg.Hash()
			_ = cfg.Placements()
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

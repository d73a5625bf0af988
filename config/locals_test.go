package config

import (
	"strings"
	"testing"
)

func TestLocals(t *testing.T) {
	const fleet = `
variable "ctx" { default = 1024 }
node "local" { connection = "local" }
model "tiny" { source = "synth:tiny" }
`
	tests := []struct {
		name    string
		src     string
		ctxSize int    // want the pool's ctx_size when there is no error
		wantErr string // summary and place of the expected error
	}{
		{name: "a local used before it is written, built from a variable and another local", src: `
pool "chat" {
  model    = "tiny"
  nodes    = ["local"]
  ctx_size = local.doubled
}
locals { doubled = local.base * 2 }
locals { base = var.ctx }
`, ctxSize: 2048},
		{name: "an undefined local names the fix", src: `
pool "chat" {
  model    = "tiny"
  nodes    = ["local"]
  ctx_size = local.doubeld
}
locals { doubled = 2 }
`, wantErr: `rbee.hcl:9:14: Undefined local value; local.doubeld is used, but no locals block defines "doubeld". Did you mean "doubled"?`},
		{name: "a cycle is reported at each expression", src: `
locals {
  a = local.b
  b = local.a
}
`, wantErr: "rbee.hcl:7:7: Cycle in local values; local.a depends on itself through local.a, local.b"},
		{name: "a name defined twice", src: `
locals { a = 1 }
locals { a = 2 }
`, wantErr: "rbee.hcl:7:10: Duplicate local value; local.a is already defined at rbee.hcl:6,10-11"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, diags := parse(t, fleet+tt.src, LoadOptions{})
			msg := render(diags)
			if tt.wantErr != "" {
				summary, detail, _ := strings.Cut(tt.wantErr, "; ")
				if !strings.Contains(msg, "Error: "+summary) || !strings.Contains(msg, detail) {
					t.Fatalf("want %q in:\n%s", tt.wantErr, msg)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(msg)
			}
			if got := cfg.Pools[0].CtxSize; got != tt.ctxSize {
				t.Errorf("ctx_size = %d, want %d", got, tt.ctxSize)
			}
		})
	}
}

package config

import (
	"strings"
	"testing"
)

const sensitiveValue = "hf_CONFIGSECRET9"

func TestSensitiveVariables(t *testing.T) {
	const decl = `variable "tok" {
  default   = "` + sensitiveValue + `"
  sensitive = true
}
variable "plain" { default = "10.0.0.9" }
`
	tests := []struct {
		name    string
		src     string
		vars    []string
		wantErr string // "" : loads
		env     string // expected value of env HF_TOKEN on node n when it loads
	}{
		{name: "in env", src: `node "n" {
  host = "10.0.0.5"
  env  = { HF_TOKEN = var.tok }
}`, env: sensitiveValue},
		{name: "through a function and a template in env", src: `node "n" {
  host = "10.0.0.5"
  env  = { HF_TOKEN = "Bearer ${upper(var.tok)}" }
}`, env: "Bearer " + strings.ToUpper(sensitiveValue)},
		{name: "through a local in env", src: `locals { t = var.tok }
node "n" {
  host = "10.0.0.5"
  env  = { HF_TOKEN = local.t }
}`, env: sensitiveValue},
		{name: "a whole local map as env", src: `locals { e = { HF_TOKEN = var.tok, HF_ENDPOINT = "http://m" } }
node "n" {
  host = "10.0.0.5"
  env  = local.e
}`, env: sensitiveValue},
		{name: "the plain part of a local that also holds a secret", src: `locals { m = { t = var.tok, h = var.plain } }
node "n" { host = local.m.h }`},
		{name: "set by -var", src: `node "n" {
  host = "10.0.0.5"
  env  = { HF_TOKEN = var.tok }
}`, vars: []string{"tok=hf_fromflag"}, env: "hf_fromflag"},
		{name: "a key from a sensitive variable", src: `node "n" {
  host = "10.0.0.5"
  env  = { (var.tok) = "x", HF_TOKEN = "t" }
}`, env: "t"},
		{name: "a sensitive map variable as env", src: `variable "m" {
  default   = { HF_TOKEN = "` + sensitiveValue + `" }
  sensitive = true
}
node "n" {
  host = "10.0.0.5"
  env  = var.m
}`, env: sensitiveValue},
		{name: "in host", src: `node "n" { host = var.tok }`, wantErr: "host uses a sensitive value (from var.tok)"},
		{name: "in a model source template", src: `model "m" { source = "https://x.example/${var.tok}.gguf" }`, wantErr: "source uses a sensitive value (from var.tok)"},
		{name: "through a local in a list", src: `locals { n = var.tok }
node "n" {
  host       = "10.0.0.5"
  file_roots = ["/m/${local.n}"]
}`, wantErr: "file_roots uses a sensitive value (from local.n)"},
		{name: "sensitive is not a bool", src: `variable "x" {
  default   = ""
  sensitive = "maybe"
}`, wantErr: `sensitive of variable "x" must be true or false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, diags := parse(t, decl+tt.src, LoadOptions{Vars: tt.vars})
			var sb strings.Builder
			_ = diags.Write(&sb, false)
			out := sb.String()
			if tt.wantErr == "" {
				if diags.HasErrors() {
					t.Fatal(out)
				}
				if got := cfg.Node("n").Env["HF_TOKEN"]; got != tt.env {
					t.Fatalf("HF_TOKEN %q, want %q", got, tt.env)
				}
				return
			}
			if !diags.HasErrors() || !strings.Contains(out, tt.wantErr) {
				t.Fatalf("want an error saying %q, got:\n%s", tt.wantErr, out)
			}
			if strings.Contains(out, sensitiveValue) {
				t.Fatalf("the diagnostics show the value:\n%s", out)
			}
		})
	}
}

// TestSensitiveVarNotEchoed: a -var that does not parse as the type of a
// sensitive variable's default is not quoted in the error.
func TestSensitiveVarNotEchoed(t *testing.T) {
	src := `variable "n" {
  default   = 1
  sensitive = true
}
`
	_, diags := parse(t, src, LoadOptions{Vars: []string{"n=" + sensitiveValue}})
	var sb strings.Builder
	_ = diags.Write(&sb, false)
	if !diags.HasErrors() || strings.Contains(sb.String(), sensitiveValue) || !strings.Contains(sb.String(), "(sensitive) is not a valid number") {
		t.Fatalf("got:\n%s", sb.String())
	}
}

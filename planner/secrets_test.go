package planner

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rbee-dev/rbee/state"
)

const secretValue = "hf_PLANSECRET42"

// secretFleet is base with a sensitive variable in gpu1's env.
func secretFleet(token string) string {
	return `variable "hf_token" {
  default   = "` + token + `"
  sensitive = true
}
` + strings.Replace(base, `env  = { A = "1" }`, `env  = { A = "1", HF_TOKEN = var.hf_token }`, 1)
}

// TestPlanShowsNoEnvValues renders a plan that creates and one that changes
// the env, as text, NDJSON and a plan file: none holds the value.
func TestPlanShowsNoEnvValues(t *testing.T) {
	cfg := load(t, secretFleet(secretValue))
	changed := load(t, secretFleet(secretValue+"-new"))
	tests := []struct {
		name   string
		plan   *Plan
		reason string
	}{
		{"create", plan(t, cfg, state.NewSnapshot(), Options{}), "+ node.gpu1: install hive"},
		{"change", plan(t, changed, applied(t, cfg), Options{}), "~ node.gpu1: env.HF_TOKEN (sensitive) changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var text, js bytes.Buffer
			if err := Render(&text, tt.plan, RenderOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := RenderJSON(&js, tt.plan); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "p.plan")
			if err := WritePlanFile(path, tt.plan); err != nil {
				t.Fatal(err)
			}
			file, _ := os.ReadFile(path)
			for what, out := range map[string]string{"plan": text.String(), "plan -json": js.String(), "plan file": string(file)} {
				if strings.Contains(out, secretValue) {
					t.Errorf("%s holds the value:\n%s", what, out)
				}
			}
			if !strings.Contains(text.String(), tt.reason) {
				t.Errorf("plan text lacks %q:\n%s", tt.reason, text.String())
			}
			if !strings.Contains(js.String(), `"HF_TOKEN":"(sensitive)"`) {
				t.Errorf("plan -json does not show the key as (sensitive):\n%s", js.String())
			}
		})
	}
}

// TestRestoreEnv reads a saved plan back: the values come from the
// configuration, and a configuration whose env differs is refused.
func TestRestoreEnv(t *testing.T) {
	cfg := load(t, secretFleet(secretValue))
	path := filepath.Join(t.TempDir(), "p.plan")
	if err := WritePlanFile(path, plan(t, cfg, state.NewSnapshot(), Options{})); err != nil {
		t.Fatal(err)
	}
	read := func() *Plan {
		p, err := ReadPlanFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := read()
	if err := p.RestoreEnv(cfg); err != nil {
		t.Fatal(err)
	}
	if got := p.Change(state.NodeAddr("gpu1")).After.(*state.NodeRecord).Env["HF_TOKEN"]; got != secretValue {
		t.Fatalf("restored HF_TOKEN %q", got)
	}
	tests := []struct {
		name string
		src  string // "" : the configuration does not load
		want string
	}{
		{"value changed", secretFleet("other"), "env.HF_TOKEN changed"},
		{"key removed", strings.Replace(secretFleet(secretValue), `, HF_TOKEN = var.hf_token`, ``, 1), "env.HF_TOKEN removed"},
		{"node gone", strings.Replace(strings.Replace(secretFleet(secretValue), `"local", "gpu1"`, `"local"`, 1), "node \"gpu1\" {\n  host = \"10.0.0.5\"\n  env  = { A = \"1\", HF_TOKEN = var.hf_token }\n}\n", "", 1), "no node \"gpu1\""},
		{"no configuration", "", "does not load"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := read()
			var err error
			if tt.src == "" {
				err = p.RestoreEnv(nil)
			} else {
				err = p.RestoreEnv(load(t, tt.src))
			}
			if !errors.Is(err, ErrStalePlan) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want a stale plan saying %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "other") || strings.Contains(err.Error(), secretValue) {
				t.Fatalf("the error shows a value: %v", err)
			}
		})
	}
}

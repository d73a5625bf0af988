package config

import (
	"strings"
	"testing"
	"time"
)

const sloFleet = `node "n" {
  connection = "local"
}
model "m" {
  source = "synth:tiny"
}
pool "chat" {
  model = "m"
  nodes = ["n"]
%s}
`

func TestSLOBlock(t *testing.T) {
	tests := []struct {
		name  string
		block string
		want  *SLO
		err   string // in the rendered diagnostics; "" for none
	}{
		{"none", "", nil, ""},
		{"both", "slo {\n min_decode_tps = 15\n max_ttft = \"2s\"\n}\n", &SLO{MinDecodeTPS: 15, MaxTTFT: 2 * time.Second}, ""},
		{"fraction", "slo {\n min_decode_tps = 9.5\n}\n", &SLO{MinDecodeTPS: 9.5}, ""},
		{"ttft only", "slo {\n max_ttft = \"250ms\"\n}\n", &SLO{MaxTTFT: 250 * time.Millisecond}, ""},
		{"empty", "slo {}\n", nil, "sets nothing"},
		{"zero", "slo {\n min_decode_tps = 0\n}\n", nil, "above 0"},
		{"negative", "slo {\n min_decode_tps = -3\n}\n", nil, "above 0"},
		{"too fast", "slo {\n min_decode_tps = 1e9\n}\n", nil, "at most"},
		{"string tps", "slo {\n min_decode_tps = \"fast\"\n}\n", nil, "must be a number"},
		{"bad duration", "slo {\n max_ttft = \"soon\"\n}\n", nil, "positive duration"},
		{"negative duration", "slo {\n max_ttft = \"-1s\"\n}\n", nil, "positive duration"},
		{"unknown attribute", "slo {\n min_tps = 3\n}\n", nil, "min_tps"},
		{"twice", "slo {\n min_decode_tps = 1\n}\nslo {\n min_decode_tps = 2\n}\n", nil, "more than one slo block"},
		{"with a label", "slo \"x\" {\n min_decode_tps = 1\n}\n", nil, "slo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, diags := parse(t, strings.Replace(sloFleet, "%s", tt.block, 1), LoadOptions{})
			if tt.err != "" {
				if !diags.HasErrors() || !strings.Contains(render(diags), tt.err) {
					t.Fatalf("want an error containing %q, got:\n%s", tt.err, render(diags))
				}
				return
			}
			if diags.HasErrors() {
				t.Fatalf("unexpected errors:\n%s", render(diags))
			}
			got := cfg.Pool("chat").SLO
			if (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
				t.Fatalf("slo = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSLOChangesTheHash(t *testing.T) {
	a, _ := parse(t, strings.Replace(sloFleet, "%s", "", 1), LoadOptions{})
	b, _ := parse(t, strings.Replace(sloFleet, "%s", "slo {\n min_decode_tps = 15\n}\n", 1), LoadOptions{})
	if a == nil || b == nil || a.Hash() == b.Hash() {
		t.Fatal("adding an slo block must change the configuration's hash")
	}
}

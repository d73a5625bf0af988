package config

import (
	"strings"
	"testing"
)

// Two hives (or workers) conflict only when they bind the same address: a
// local node binds 127.0.0.1, an SSH node the host it is reached at.
func TestHivePortsByBindAddress(t *testing.T) {
	tests := []struct{ name, nodes, want string }{
		{"local and another loopback address", `node "local" { connection = "local" }
node "n9" { host = "127.0.0.9" }`, ""},
		{"local and 127.0.0.1", `node "local" { connection = "local" }
node "n1" { host = "127.0.0.1" }`, "Conflicting ports"},
		{"local and localhost", `node "local" { connection = "local" }
node "lh" { host = "localhost" }`, "Conflicting ports"},
		{"two SSH nodes on one host", `node "a" { host = "10.0.0.5" }
node "b" { host = "10.0.0.5" }`, "Conflicting ports"},
		{"two SSH nodes on one host, own ports", `node "a" { host = "10.0.0.5" }
node "b" {
  host      = "10.0.0.5"
  hive_port = 9300
}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := parse(t, tt.nodes+"\n", LoadOptions{})
			msg := render(diags)
			if tt.want == "" {
				if diags.HasErrors() {
					t.Fatalf("unexpected errors:\n%s", msg)
				}
				return
			}
			if !strings.Contains(msg, tt.want) {
				t.Fatalf("want %q in:\n%s", tt.want, msg)
			}
		})
	}
}

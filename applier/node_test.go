package applier

import (
	"testing"

	"github.com/rbee-dev/rbee/state"
)

// The node's known_hosts reaches the SSH config; RBEE_KNOWN_HOSTS, when
// set, overrides it.
func TestNodeKnownHosts(t *testing.T) {
	tests := []struct{ name, attr, env, want string }{
		{"default", "", "", ""},
		{"attribute", "/etc/rbee/known_hosts", "", "/etc/rbee/known_hosts"},
		{"environment overrides", "/etc/rbee/known_hosts", "/srv/ci/known_hosts", "/srv/ci/known_hosts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(KnownHostsEnv, tt.env)
			n := nodeFromRecord(&state.NodeRecord{Name: "n", Connection: "ssh", Host: "10.0.0.5", Port: 22, KnownHosts: tt.attr})
			if n.SSH.KnownHosts != tt.want {
				t.Errorf("SSH.KnownHosts = %q, want %q", n.SSH.KnownHosts, tt.want)
			}
		})
	}
}

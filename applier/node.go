package applier

import (
	"os"

	"github.com/rbee-dev/rbee/applier/transport"
	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/state"
)

// KnownHostsEnv names an environment variable that overrides the
// known_hosts file SSH host keys are checked against (default ~/.ssh/known_hosts).
const KnownHostsEnv = "RBEE_KNOWN_HOSTS"

// NodeFromConfig is the apply view of a configured node.
func NodeFromConfig(n *config.Node) Node {
	return Node{
		Name:  n.Name,
		Local: n.Connection == config.ConnectionLocal,
		SSH: transport.SSHConfig{
			Node: n.Name, Host: n.Host, Port: n.Port, User: n.User, Identity: n.Identity,
			KnownHosts: os.Getenv(KnownHostsEnv), InsecureIgnoreHostKey: n.InsecureIgnoreHostKey,
		},
		InstallDir:  n.InstallDir,
		HivePort:    n.HivePort,
		Env:         n.Env,
		Binary:      n.Binary,
		InstallMode: n.InstallMode,
	}
}

// nodeFromRecord is the apply view of a node known only from state (to delete it).
func nodeFromRecord(r *state.NodeRecord) Node {
	return Node{
		Name:  r.Name,
		Local: r.Connection == config.ConnectionLocal,
		SSH: transport.SSHConfig{
			Node: r.Name, Host: r.Host, Port: r.Port, User: r.User, Identity: r.Identity,
			KnownHosts: os.Getenv(KnownHostsEnv), InsecureIgnoreHostKey: r.InsecureIgnoreHostKey,
		},
		InstallDir:  r.InstallDir,
		HivePort:    r.HivePort,
		Env:         r.Env,
		Binary:      r.Binary,
		InstallMode: r.InstallMode,
	}
}

// nodeRecord is the state record of a node apply installed.
func nodeRecord(n *config.Node, h InstalledHive) state.NodeRecord {
	return state.NodeRecord{
		Name: n.Name, Connection: n.Connection, Host: n.Host, Port: n.Port, User: n.User,
		Identity: n.Identity, InsecureIgnoreHostKey: n.InsecureIgnoreHostKey,
		InstallDir: n.InstallDir, InstallMode: n.InstallMode, Binary: n.Binary, Env: n.Env,
		HivePort: n.HivePort, HiveURL: h.URL, HiveVersion: h.Version, BinarySHA256: h.BinarySHA256,
		Status: state.NodeReady,
	}
}

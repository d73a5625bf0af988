package applier

import (
	"os"

	"github.com/rbee-dev/rbee/applier/transport"
	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/state"
)

// KnownHostsEnv names an environment variable that, when set, overrides the
// known_hosts file SSH host keys are checked against (the node's
// known_hosts attribute, else ~/.ssh/known_hosts).
const KnownHostsEnv = "RBEE_KNOWN_HOSTS"

// nodeFromRecord is the apply view of a node record (desired or recorded).
func nodeFromRecord(r *state.NodeRecord) Node {
	knownHosts := r.KnownHosts
	if env := os.Getenv(KnownHostsEnv); env != "" {
		knownHosts = env
	}
	return Node{
		Name:  r.Name,
		Local: r.Connection == config.ConnectionLocal,
		SSH: transport.SSHConfig{
			Node: r.Name, Host: r.Host, Port: r.Port, User: r.User, Identity: r.Identity,
			KnownHosts: knownHosts, InsecureIgnoreHostKey: r.InsecureIgnoreHostKey,
		},
		InstallDir:  r.InstallDir,
		HivePort:    r.HivePort,
		Env:         r.Env,
		envDigest:   r.EnvDigest,
		Binary:      r.Binary,
		InstallMode: r.InstallMode,
		FileRoots:   r.FileRoots,
	}
}

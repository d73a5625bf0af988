package applier

import (
	"fmt"

	"github.com/rbee-dev/rbee/secret"
)

// envFile is the content of the node's hive.env (nil without env). It
// refuses values that do not match the digests the plan recorded: a plan
// read from a file whose values were not restored from the configuration.
func (n Node) envFile() ([]byte, error) {
	if n.envDigest != nil && !secret.Matches(n.Env, n.envDigest) {
		return nil, fmt.Errorf("the env values of node %s are not in the plan (plan files never hold them, they are read from the configuration): run rbee apply with the configuration beside it, or rbee plan again", n.Name)
	}
	if len(n.Env) == 0 {
		return nil, nil
	}
	b, err := secret.EnvFile(n.Env)
	if err != nil {
		return nil, fmt.Errorf("env of node %s: %w", n.Name, err)
	}
	return b, nil
}

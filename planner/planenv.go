package planner

import (
	"fmt"
	"maps"

	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/secret"
	"github.com/rbee-dev/rbee/state"
)

// RestoreEnv gives the desired node records of a plan read from a file the
// env values a plan file never holds, from cfg (nil when the configuration
// does not load). It refuses, wrapping ErrStalePlan, when a node's env in cfg
// does not match the digests the plan recorded, and when the plan needs
// values but cfg is nil or lacks the node.
func (p *Plan) RestoreEnv(cfg *config.Config) error {
	for _, c := range p.Changes {
		after, ok := c.After.(*state.NodeRecord)
		if !ok || after == nil {
			continue
		}
		var env map[string]string
		switch {
		case cfg != nil && cfg.Node(after.Name) != nil:
			env = cfg.Node(after.Name).Env
		case len(after.EnvDigest) == 0:
			continue
		case cfg == nil:
			return fmt.Errorf("%w: %s sets the node's env, whose values are read from the configuration (plan files never hold them), but the configuration does not load; fix it (rbee validate) or run rbee plan -out FILE again", ErrStalePlan, c.Addr)
		default:
			return fmt.Errorf("%w: %s sets the node's env, whose values are read from the configuration, but the configuration has no node %q any more; run rbee plan -out FILE again", ErrStalePlan, c.Addr, after.Name)
		}
		if !secret.Matches(env, after.EnvDigest) {
			return fmt.Errorf("%w: the env of %s in the configuration differs from the plan's (%s); run rbee plan -out FILE again", ErrStalePlan, c.Addr, describeEnvChange(after.EnvDigest, env))
		}
		after.Env = maps.Clone(env)
	}
	return nil
}

// describeEnvChange names the keys whose values differ, never the values.
func describeEnvChange(digests, env map[string]string) string {
	s := ""
	for i, ch := range secret.Compare(digests, secret.Digests(env)) {
		if i > 0 {
			s += ", "
		}
		s += "env." + ch.Key + " " + ch.What
	}
	return s
}

package planner

import (
	"fmt"

	"github.com/rbee-dev/rbee/secret"
	"github.com/rbee-dev/rbee/state"
)

// envReasons says which keys of a node's env changed, never their values
// (every env value is sensitive, whatever its source): one reason per key,
// "env.HF_TOKEN (sensitive) changed". The records' digests are compared.
func envReasons(h, w *state.NodeRecord) []string {
	var out []string
	for _, c := range secret.Compare(h.EnvDigest, w.EnvDigest) {
		out = append(out, fmt.Sprintf("env.%s %s %s", c.Key, secret.Redacted, c.What))
	}
	return out
}

// envDiffers reports whether the env of a recorded node h and the desired w differ.
func envDiffers(h, w *state.NodeRecord) bool {
	return len(secret.Compare(h.EnvDigest, w.EnvDigest)) > 0
}

package state

import (
	"encoding/json"

	"github.com/rbee-dev/rbee/secret"
)

// nodeJSON is NodeRecord without its JSON methods.
type nodeJSON NodeRecord

// MarshalJSON writes the record with env_digest and, under env, each key
// with secret.Redacted in place of its value: the values themselves are
// never written. A record that has values but no digests yet gets them.
func (r NodeRecord) MarshalJSON() ([]byte, error) {
	if r.EnvDigest == nil {
		r.EnvDigest = secret.Digests(r.Env)
	}
	return json.Marshal(struct {
		nodeJSON
		Env map[string]string `json:"env,omitempty"`
	}{nodeJSON(r), secret.Redact(r.EnvDigest)})
}

// UnmarshalJSON reads a record MarshalJSON wrote. One written before
// env_digest existed carries the values under env: they become digests and
// are dropped, so the next write of the record no longer holds them.
func (r *NodeRecord) UnmarshalJSON(b []byte) error {
	aux := struct {
		*nodeJSON
		Env map[string]string `json:"env"`
	}{nodeJSON: (*nodeJSON)(r)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	if r.EnvDigest == nil && len(aux.Env) > 0 {
		r.EnvDigest = secret.Digests(aux.Env)
	}
	r.Env = nil
	return nil
}

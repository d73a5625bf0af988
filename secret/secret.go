// Package secret keeps values that must never be printed out of plans, state
// and logs: the marker shown in their place, the digest recorded instead of
// them (enough to see a change, not to read the value), and the hive's
// environment file, the only place on a node they are written to.
package secret

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
)

// Redacted is what output shows in place of a sensitive value.
const Redacted = "(sensitive)"

// digestPrefix names the digest algorithm, so another can follow.
const digestPrefix = "sha256:"

// Digest is the digest recorded for value: "sha256:" and 64 hex digits. It
// tells two values apart without revealing either; a value short enough to
// guess can be confirmed by whoever reads the digest, so tokens should be
// long and random.
func Digest(value string) string {
	sum := sha256.Sum256([]byte(value))
	return digestPrefix + hex.EncodeToString(sum[:])
}

// Digests maps each key of env to the digest of its value; nil for an
// empty env.
func Digests(env map[string]string) map[string]string {
	if len(env) == 0 {
		return nil
	}
	out := make(map[string]string, len(env))
	for k, v := range env {
		out[k] = Digest(v)
	}
	return out
}

// Redact maps each key of env to Redacted; nil for an empty env.
func Redact(env map[string]string) map[string]string {
	if len(env) == 0 {
		return nil
	}
	out := make(map[string]string, len(env))
	for k := range env {
		out[k] = Redacted
	}
	return out
}

// Matches reports whether env holds exactly the keys of digests, each with
// a value of that digest.
func Matches(env, digests map[string]string) bool {
	return maps.Equal(Digests(env), digests) || len(env) == 0 && len(digests) == 0
}

// Change is how one key differs between two digest maps.
type Change struct {
	Key  string
	What string // "added", "changed" or "removed"
}

// Compare lists the keys whose digests differ between before and after,
// sorted by key.
func Compare(before, after map[string]string) []Change {
	keys := slices.Sorted(maps.Keys(before))
	for k := range after {
		if _, ok := before[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []Change
	for _, k := range keys {
		b, inBefore := before[k]
		a, inAfter := after[k]
		switch {
		case !inBefore:
			out = append(out, Change{k, "added"})
		case !inAfter:
			out = append(out, Change{k, "removed"})
		case a != b:
			out = append(out, Change{k, "changed"})
		}
	}
	return out
}

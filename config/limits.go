package config

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Limits on single values. Each is the limit of the system the value ends
// up in, so that a file that validates is not refused later on a node.
const (
	MaxHostLen      = 253      // a DNS name (RFC 1035)
	MaxHostLabelLen = 63       // one dot-separated label of a DNS name
	MaxUserLen      = 32       // a POSIX login name (useradd's limit)
	MaxPathLen      = 4096     // PATH_MAX on Linux
	MaxSourceLen    = 4096     // a model source reference
	MaxRevisionLen  = 255      // a branch, tag or commit of a Hugging Face repository
	MaxEnvKeyLen    = 256      // one environment variable name
	MaxEnvValueLen  = 32 << 10 // one environment value (Linux refuses a single string over 128 KiB)
	MaxEnvBytes     = 128 << 10
)

var labelRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$`)

// clip quotes s for a message, shortened to its first 60 characters and "…"
// when it is longer (the messages that clip say how long it is).
func clip(s string) string {
	if utf8.RuneCountInString(s) <= 60 {
		return fmt.Sprintf("%q", s)
	}
	r := []rune(s)
	return fmt.Sprintf("%q…", string(r[:60]))
}

// CheckHost reports whether h is an IP address or a DNS name of at most
// MaxHostLen characters whose labels are at most MaxHostLabelLen.
func CheckHost(h string) error {
	if net.ParseIP(h) != nil {
		return nil
	}
	if len(h) > MaxHostLen {
		return fmt.Errorf("%s is %d characters long; a DNS name has at most %d (and each dot-separated label at most %d)", clip(h), len(h), MaxHostLen, MaxHostLabelLen)
	}
	for _, l := range strings.Split(h, ".") {
		if len(l) > MaxHostLabelLen {
			return fmt.Errorf("%s has a label of %d characters (%s); each dot-separated label of a DNS name has at most %d", clip(h), len(l), clip(l), MaxHostLabelLen)
		}
		if !labelRe.MatchString(l) {
			return fmt.Errorf("%s is not an IP address or DNS name: labels of letters, digits and dashes, separated by dots", clip(h))
		}
	}
	return nil
}

// host checks the host of an SSH node that has one.
func (v *validator) host(n *Node) {
	if err := CheckHost(n.Host); err != nil {
		v.errorf(n.Range("host"), "Invalid host", "host of node %q: %v.", n.Name, err)
	}
}

// user checks the SSH login name of a node.
func (v *validator) user(n *Node) {
	switch {
	case n.User == "":
	case len(n.User) > MaxUserLen:
		v.errorf(n.Range("user"), "Invalid user", "user %s of node %q is %d characters long; a POSIX login name has at most %d.", clip(n.User), n.Name, len(n.User), MaxUserLen)
	case !userRe.MatchString(n.User):
		v.errorf(n.Range("user"), "Invalid user", "user %s of node %q is not a valid login name: letters, digits, _ . - starting with a letter or _.", clip(n.User), n.Name)
	}
}

// pathLimits refuses paths on this machine that are longer than any file
// system allows, and marks them bad so the checks that open them skip them.
func (v *validator) pathLimits(n *Node) {
	for attr, p := range map[string]string{"identity": n.Identity, "known_hosts": n.KnownHosts, "binary": n.Binary} {
		if len(p) > MaxPathLen {
			v.errorf(n.Range(attr), "Path too long", "%s of node %q is %d bytes long; a path has at most %d (PATH_MAX).", attr, n.Name, len(p), MaxPathLen)
			if n.bad == nil {
				n.bad = map[string]bool{}
			}
			n.bad[attr] = true
		}
	}
}

// env checks a node's environment: POSIX names, no control characters, and
// sizes a process can be started with.
func (v *validator) env(n *Node) {
	total := 0
	for _, k := range sortedKeys(n.Env) {
		val, at := n.Env[k], n.envRange(k)
		total += len(k) + len(val) + 2 // KEY=VALUE and its NUL, as execve counts
		switch {
		case len(k) > MaxEnvKeyLen:
			v.errorf(at, "Invalid environment variable name", "env key %s of node %q is %d characters long; allowed: at most %d.", clip(k), n.Name, len(k), MaxEnvKeyLen)
		case !envKeyRe.MatchString(k):
			v.errorf(at, "Invalid environment variable name", "env key %s of node %q is not a valid name: letters, digits and _, not starting with a digit.", clip(k), n.Name)
		case len(val) > MaxEnvValueLen:
			v.errorf(at, "Environment value too long", "env %s of node %q is %s; allowed: at most %s per value (a process cannot be started with very long ones). Put large data in a file and pass its path.", k, n.Name, byteSize(int64(len(val))), byteSize(MaxEnvValueLen))
		case strings.ContainsAny(val, "\x00\n\r") || hasControl(strings.ReplaceAll(val, "\t", "")):
			v.errorf(at, "Invalid environment value", "env %s of node %q contains control characters (newline, NUL, ...), which are not allowed.", k, n.Name)
		}
	}
	if total > MaxEnvBytes {
		v.errorf(n.Range("env"), "Environment too large", "env of node %q is %s as KEY=VALUE strings; allowed: at most %s in all.", n.Name, byteSize(int64(total)), byteSize(MaxEnvBytes))
	}
}

// envRange is where key k of env is written, or the env attribute.
func (n *Node) envRange(k string) hcl.Range {
	if r, ok := n.ranges["env."+k]; ok {
		return r
	}
	return n.Range("env")
}

// modelLimits refuses model attributes longer than their limits, saying
// whether it did (the other checks are skipped then).
func (v *validator) modelLimits(m *Model) bool {
	for _, c := range []struct {
		attr, val string
		max       int
	}{{"source", m.Source, MaxSourceLen}, {"file", m.File, MaxPathLen}, {"revision", m.Revision, MaxRevisionLen}, {"sha256", m.SHA256, 64}} {
		if len(c.val) > c.max {
			v.errorf(m.Range(c.attr), "Value too long", "%s of model %q is %d characters long (%s); allowed: at most %d.", c.attr, m.Name, len(c.val), clip(c.val), c.max)
			return true
		}
	}
	return false
}

// keyRanges records where each literal key of the object attribute name is
// written, as "name.KEY".
func (a *attrs) keyRanges(name string) {
	at, ok := a.attrs[name]
	if !ok {
		return
	}
	obj, ok := at.Expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		return
	}
	for _, item := range obj.Items {
		k, diags := item.KeyExpr.Value(a.ctx)
		k, _ = k.Unmark() // a key from a sensitive variable
		if diags.HasErrors() || !k.IsKnown() || k.IsNull() || k.Type() != cty.String {
			continue
		}
		a.ranges[name+"."+k.AsString()] = item.KeyExpr.Range()
	}
}

// elemRanges records where each element of the list attribute name is
// written, as "name[i]".
func (a *attrs) elemRanges(name string) {
	if at, ok := a.attrs[name]; ok {
		if list, ok := at.Expr.(*hclsyntax.TupleConsExpr); ok {
			for i, e := range list.Exprs {
				a.ranges[fmt.Sprintf("%s[%d]", name, i)] = e.Range()
			}
		}
	}
}

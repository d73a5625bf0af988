package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/rbee-dev/rbee/api"
)

// StateBackends lists the known types of a state block.
var StateBackends = []string{"etcd"}

// DefaultStatePrefix is the key prefix of the etcd state backend.
const DefaultStatePrefix = "rbee"

// MaxStatePrefixLen is the longest key prefix of the etcd state backend.
const MaxStatePrefixLen = 256

var statePrefixRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_./-]*$`)

// StateBackend is a state "TYPE" block: where rbee keeps its state when it
// is not the Pebble store beside the configuration.
type StateBackend struct {
	Type         string   // "etcd"
	Endpoints    []string // http(s)://host:port of each etcd member
	Prefix       string   // key prefix, default DefaultStatePrefix
	CAFile       string   // PEM bundle that signs the members' certificates; empty: the system roots
	CertFile     string   // client certificate, with KeyFile
	KeyFile      string   // client key, mode 0600 or stricter
	Username     string   // etcd user, with PasswordFile
	PasswordFile string   // file holding the user's password, mode 0600 or stricter
	Insecure     bool     // allow plain http to an endpoint that is not a loopback address

	DeclRange hcl.Range
	ranges    map[string]hcl.Range
	bad       map[string]bool
}

// Range returns where attribute attr is set, or the block header when it is not.
func (s *StateBackend) Range(attr string) hcl.Range { return rangeOf(s.ranges, attr, s.DeclRange) }

var etcdSchema = schema("endpoints", "prefix", "ca_file", "cert_file", "key_file", "username", "password_file", "insecure")

func (d *decoder) decodeState(ctx *hcl.EvalContext, b *hcl.Block) *StateBackend {
	s := &StateBackend{Type: b.Labels[0], DeclRange: b.DefRange, ranges: map[string]hcl.Range{"label": b.LabelRanges[0]}, bad: map[string]bool{}}
	if s.Type != "etcd" {
		return s // validation names the known types; the body of an unknown one means nothing
	}
	a := d.content(ctx, b, etcdSchema)
	a.ranges["label"] = b.LabelRanges[0]
	s.ranges, s.bad = a.ranges, a.bad
	a.strList("endpoints", &s.Endpoints)
	a.elemRanges("endpoints")
	a.str("prefix", &s.Prefix)
	for attr, dst := range map[string]*string{"ca_file": &s.CAFile, "cert_file": &s.CertFile, "key_file": &s.KeyFile, "password_file": &s.PasswordFile} {
		a.str(attr, dst)
		*dst = expandHome(*dst, d.env["HOME"])
	}
	a.str("username", &s.Username)
	a.boolean("insecure", &s.Insecure)
	if s.Prefix == "" && !a.bad["prefix"] {
		s.Prefix = DefaultStatePrefix
	}
	return s
}

// CheckEndpoint reports whether e is an etcd endpoint: http(s)://host:port
// with nothing after the port. Plain http is refused to a host that is not a
// loopback address unless insecure is set.
func CheckEndpoint(e string, insecure bool) error {
	u, err := url.Parse(e)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s is not an endpoint URL; use https://host:2379", clip(e))
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%s: an endpoint is scheme://host:port only (no user, path or query); put credentials in username and password_file", clip(e))
	}
	if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%s has no valid port; use e.g. https://%s:2379", clip(e), u.Hostname())
	}
	if err := CheckHost(u.Hostname()); err != nil {
		return err
	}
	if u.Scheme == "http" && !insecure && !api.IsLoopback(u.Hostname()) {
		return fmt.Errorf("%s: plain http to a host other than this machine sends the fleet's state (and the etcd password) in clear text; use https://, or set insecure = true if the network is trusted", clip(e))
	}
	return nil
}

func (v *validator) state(s *StateBackend) {
	r := s.Range
	if s.Type != "etcd" {
		v.errorf(r("label"), "Unknown state backend", "state %s is not a known backend; known: %s. Without a state block, rbee keeps its state in .rbee/ beside the configuration.", clip(s.Type), strings.Join(StateBackends, ", "))
		return
	}
	if len(s.Endpoints) == 0 && !s.bad["endpoints"] {
		v.errorf(r("endpoints"), "Missing endpoints", "state \"etcd\" needs endpoints = [\"https://etcd1:2379\", ...] with at least one member.")
	}
	seen := map[string]bool{}
	for i, e := range s.Endpoints {
		at := rangeOf(s.ranges, fmt.Sprintf("endpoints[%d]", i), r("endpoints"))
		if err := CheckEndpoint(e, s.Insecure); err != nil {
			v.errorf(at, "Invalid endpoint", "state \"etcd\" endpoint: %v.", err)
		} else if seen[e] {
			v.errorf(at, "Duplicate endpoint", "state \"etcd\" lists endpoint %q twice.", e)
		}
		seen[e] = true
	}
	if !s.bad["prefix"] && (len(s.Prefix) > MaxStatePrefixLen || !statePrefixRe.MatchString(s.Prefix) || strings.Contains(s.Prefix, "..")) {
		v.errorf(r("prefix"), "Invalid prefix", "prefix %s of state \"etcd\" must be 1-%d letters, digits and _ . / -, not starting with / or . and without \"..\".", clip(s.Prefix), MaxStatePrefixLen)
	}
	v.pair(s, "cert_file", s.CertFile, "key_file", s.KeyFile)
	v.pair(s, "username", s.Username, "password_file", s.PasswordFile)
	if s.Username != "" && (len(s.Username) > 128 || hasControl(s.Username)) {
		v.errorf(r("username"), "Invalid username", "username %s of state \"etcd\" must be at most 128 characters without control characters.", clip(s.Username))
	}
	for _, f := range []struct {
		attr, path string
		secret     bool
	}{{"ca_file", s.CAFile, false}, {"cert_file", s.CertFile, false}, {"key_file", s.KeyFile, true}, {"password_file", s.PasswordFile, true}} {
		if f.path != "" && !s.bad[f.attr] {
			v.secretFile(r(f.attr), f.attr+" of state \"etcd\"", f.path, f.secret, true)
		}
	}
}

// pair reports one of two attributes that only work together set without
// the other.
func (v *validator) pair(s *StateBackend, a, av, b, bv string) {
	switch {
	case av != "" && bv == "" && !s.bad[b]:
		v.errorf(s.Range(a), "Missing "+b, "state \"etcd\" sets %s but not %s; they work together: set both, or neither.", a, b)
	case bv != "" && av == "" && !s.bad[a]:
		v.errorf(s.Range(b), "Missing "+a, "state \"etcd\" sets %s but not %s; they work together: set both, or neither.", b, a)
	}
}

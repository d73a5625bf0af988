package config

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/rbee-dev/rbee/api"
)

// Defaults and limits of the gateway block.
const (
	DefaultGatewayListen       = "127.0.0.1:8080"
	DefaultGatewayQueue        = 64
	MaxGatewayQueue            = 100000
	DefaultGatewayQueueTimeout = 30 * time.Second
)

// Gateway configures rbee gateway, the fleet's OpenAI-compatible endpoint
// (and the daemon's, when rbee watch serves it).
type Gateway struct {
	Listen       string        // host:port, default DefaultGatewayListen
	APIKeysFile  string        // file of client API keys, ~ expanded; required unless Listen is loopback
	Queue        int           // requests waiting for a free slot, 0-MaxGatewayQueue; 0 refuses when all are busy
	QueueTimeout time.Duration // how long a request may wait in the queue

	DeclRange hcl.Range
	ranges    map[string]hcl.Range
	bad       map[string]bool
}

// Watch configures rbee watch.
type Watch struct {
	// AllowDestroy lets the daemon delete what the file no longer declares;
	// without it (or --allow-destroy) it only creates and updates.
	AllowDestroy bool

	DeclRange hcl.Range // zero without a watch block
}

// Range returns where attribute attr is set, or the block header when it is not.
func (g *Gateway) Range(attr string) hcl.Range { return rangeOf(g.ranges, attr, g.DeclRange) }

var gatewaySchema = schema("listen", "api_keys_file", "queue", "queue_timeout")
var watchSchema = schema("allow_destroy")

// decodeSetting decodes the blocks that configure how rbee runs rather than
// what runs: gateway, watch and state. Each may appear once.
func (d *decoder) decodeSetting(ctx *hcl.EvalContext, cfg *Config, b *hcl.Block) {
	switch b.Type {
	case "gateway":
		if cfg.Gateway != nil {
			d.duplicateBlock(b, cfg.Gateway.DeclRange)
			return
		}
		cfg.Gateway = d.decodeGateway(ctx, b)
	case "watch":
		if cfg.Watch.DeclRange.Filename != "" {
			d.duplicateBlock(b, cfg.Watch.DeclRange)
			return
		}
		a := d.content(ctx, b, watchSchema)
		cfg.Watch = Watch{DeclRange: b.DefRange}
		a.boolean("allow_destroy", &cfg.Watch.AllowDestroy)
	case "state":
		if cfg.State != nil {
			d.duplicateBlock(b, cfg.State.DeclRange)
			return
		}
		cfg.State = d.decodeState(ctx, b)
	}
}

func (d *decoder) duplicateBlock(b *hcl.Block, first hcl.Range) {
	d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate " + b.Type + " block", Subject: b.DefRange.Ptr(),
		Detail: fmt.Sprintf("a %s block is already declared at %s; a configuration has at most one. Merge the two.", b.Type, first)})
}

func (d *decoder) decodeGateway(ctx *hcl.EvalContext, b *hcl.Block) *Gateway {
	a := d.content(ctx, b, gatewaySchema)
	g := &Gateway{Listen: DefaultGatewayListen, Queue: DefaultGatewayQueue, QueueTimeout: DefaultGatewayQueueTimeout,
		DeclRange: b.DefRange, ranges: a.ranges, bad: a.bad}
	a.str("listen", &g.Listen)
	a.str("api_keys_file", &g.APIKeysFile)
	a.integer("queue", &g.Queue)
	a.duration("queue_timeout", &g.QueueTimeout)
	if g.Listen == "" {
		g.Listen = DefaultGatewayListen
	}
	g.APIKeysFile = expandHome(g.APIKeysFile, d.env["HOME"])
	return g
}

// CheckListen reports whether addr is a host:port to listen on: an IP
// address, a DNS name or nothing (every interface), and a port 1-65535.
func CheckListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s is not host:port; use e.g. \"127.0.0.1:8080\", or \":8080\" for every interface", clip(addr))
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%s has port %s; allowed: 1-65535", clip(addr), clip(port))
	}
	if host == "" {
		return nil
	}
	return CheckHost(host)
}

func (v *validator) gateway(g *Gateway) {
	r := g.Range
	if !g.bad["listen"] {
		if err := CheckListen(g.Listen); err != nil {
			v.errorf(r("listen"), "Invalid listen", "listen of the gateway: %v.", err)
		} else if g.APIKeysFile == "" && !g.bad["api_keys_file"] && !api.IsLoopback(g.Listen) {
			v.errorf(r("listen"), "Missing api_keys_file", "the gateway listens on %q, which other machines can reach, so it needs api_keys_file = \"<path>\" with the API keys clients must present (mode 0600). Or listen on a loopback address such as %q.", g.Listen, DefaultGatewayListen)
		}
	}
	if g.APIKeysFile != "" && !g.bad["api_keys_file"] {
		v.secretFile(r("api_keys_file"), "api_keys_file of the gateway", g.APIKeysFile, true, false)
	}
	if !g.bad["queue"] && (g.Queue < 0 || g.Queue > MaxGatewayQueue) {
		v.errorf(r("queue"), "Invalid queue", "queue of the gateway is %d; allowed: 0 (no queue: refuse when every worker is busy) to %d requests.", g.Queue, MaxGatewayQueue)
	}
}

// secretFile checks a file named in the configuration: it must not be longer
// than a path may be or a folder; when secret, it must be readable by its
// owner only. A missing file is an error when required, else a warning.
func (v *validator) secretFile(r hcl.Range, what, path string, secret, required bool) {
	if len(path) > MaxPathLen {
		v.errorf(r, "Path too long", "%s is %d bytes long; a path has at most %d (PATH_MAX).", what, len(path), MaxPathLen)
		return
	}
	fi, err := os.Stat(path)
	switch {
	case err != nil && required:
		v.errorf(r, "File not found", "%s %q cannot be read (%s); create it or fix the path.", what, path, errReason(err))
	case err != nil:
		v.warnf(r, "File not found", "%s %q cannot be read (%s); it must exist before rbee uses it.", what, path, errReason(err))
	case fi.IsDir():
		v.errorf(r, "Path is a folder", "%s %q is a folder; point it at a file.", what, path)
	case secret && fi.Mode().Perm()&0o077 != 0:
		v.errorf(r, "File readable by others", "%s %q has mode %04o, so other users can read the secrets in it; run: chmod 600 %s", what, path, fi.Mode().Perm(), path)
	}
}

// settings checks the gateway, state and file_roots settings and warns about
// a configuration that declares nothing.
func (v *validator) settings() {
	if g := v.cfg.Gateway; g != nil {
		v.gateway(g)
	}
	if s := v.cfg.State; s != nil {
		v.state(s)
	}
	v.fileRootsOfModels()
	if len(v.cfg.Nodes)+len(v.cfg.Models)+len(v.cfg.Pools) == 0 && len(v.cfg.Files) > 0 {
		v.warnf(*fileStart(v.cfg.Files[0]), "Empty configuration",
			"the configuration declares no node, model or pool, so plan and apply would stop and remove everything recorded in state. If that is meant, rbee destroy says so plainly; otherwise check that the right file is read.")
	}
}

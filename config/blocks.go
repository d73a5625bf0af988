package config

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/rbee-dev/rbee/spec"
)

func (d *decoder) decodeNode(ctx *hcl.EvalContext, b *hcl.Block) *Node {
	a := d.content(ctx, b, nodeSchema)
	n := &Node{Name: b.Labels[0], DeclRange: b.DefRange, ranges: a.ranges, Port: DefaultSSHPort, HivePort: DefaultHivePort}
	a.str("connection", &n.Connection)
	a.str("host", &n.Host)
	a.integer("port", &n.Port)
	a.str("user", &n.User)
	a.str("identity", &n.Identity)
	a.str("known_hosts", &n.KnownHosts)
	a.str("install_dir", &n.InstallDir)
	a.integer("hive_port", &n.HivePort)
	a.strMap("env", &n.Env)
	a.keyRanges("env")
	a.strList("file_roots", &n.FileRoots)
	a.elemRanges("file_roots")
	a.boolean("insecure_ignore_host_key", &n.InsecureIgnoreHostKey)
	a.str("binary", &n.Binary)
	a.str("install_mode", &n.InstallMode)
	n.ranges["label"] = b.LabelRanges[0]
	n.bad = a.bad
	if n.Connection == "" && n.Host != "" {
		n.Connection = ConnectionSSH
	}
	if n.Connection == ConnectionSSH && n.InstallMode == "" {
		n.InstallMode = InstallSetsid
	}
	n.Binary = expandHome(n.Binary, d.env["HOME"])
	if n.Connection == ConnectionSSH {
		n.Identity = expandHome(n.Identity, d.env["HOME"])
		n.KnownHosts = expandHome(n.KnownHosts, d.env["HOME"])
	} else {
		n.Port = 0
	}
	if n.InstallDir == "" {
		if n.Connection == ConnectionLocal {
			n.InstallDir = filepath.Join(d.opts.StateDir, "nodes", n.Name)
			if abs, err := filepath.Abs(n.InstallDir); err == nil {
				n.InstallDir = abs
			}
		} else {
			n.InstallDir = DefaultInstallDir
		}
	} else if n.Connection == ConnectionLocal {
		n.InstallDir = expandHome(n.InstallDir, d.env["HOME"])
	}
	return n
}

func (d *decoder) decodeModel(ctx *hcl.EvalContext, b *hcl.Block) *Model {
	a := d.content(ctx, b, modelSchema)
	m := &Model{Name: b.Labels[0], DeclRange: b.DefRange, ranges: a.ranges}
	a.str("source", &m.Source)
	a.str("file", &m.File)
	a.str("revision", &m.Revision)
	a.str("sha256", &m.SHA256)
	a.boolean("keep", &m.Keep)
	m.ranges["label"] = b.LabelRanges[0]
	m.bad = a.bad
	m.SHA256 = strings.ToLower(m.SHA256)
	if strings.HasPrefix(m.Source, "hf:") && m.Revision == "" {
		m.Revision = DefaultModelRevision
	}
	return m
}

func (d *decoder) decodePool(ctx *hcl.EvalContext, b *hcl.Block) *Pool {
	a := d.content(ctx, b, poolSchema)
	p := &Pool{Name: b.Labels[0], DeclRange: b.DefRange, ranges: a.ranges, Replicas: DefaultReplicas, Worker: spec.Defaults()}
	a.str("model", &p.Model)
	a.strList("nodes", &p.Nodes)
	if at, ok := a.attrs["nodes"]; ok {
		if list, ok := at.Expr.(*hclsyntax.TupleConsExpr); ok {
			for i, e := range list.Exprs {
				a.ranges[fmt.Sprintf("nodes[%d]", i)] = e.Range()
			}
		}
	}
	a.integer("replicas", &p.Replicas)
	a.integer("port", &p.Port)
	a.worker(&p.Worker)
	p.SLO = d.decodeSLO(ctx, p.Name, a.blocks)
	p.ranges["label"] = b.LabelRanges[0]
	p.bad = a.bad
	return p
}

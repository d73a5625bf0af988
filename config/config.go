// Package config reads rbee's HCL files into the desired state of a fleet:
// nodes, models and worker pools, with variables, defaults and validation that
// reports every problem at once, anchored to file, line and column.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/rbee-dev/rbee/spec"
)

// Connection kinds of a node.
const (
	ConnectionLocal = "local" // the hive runs on this machine, no SSH
	ConnectionSSH   = "ssh"   // the hive is installed and started over SSH
)

// Install modes of a hive on an SSH node.
const (
	InstallSetsid  = "setsid"  // a detached process started with setsid (default)
	InstallSystemd = "systemd" // a systemd unit
)

// Defaults applied when an attribute is omitted.
const (
	DefaultSSHPort       = 22
	DefaultHivePort      = spec.DefaultHivePort
	DefaultInstallDir    = "/opt/rbee" // for SSH nodes; local nodes use <state dir>/nodes/<name>
	DefaultReplicas      = 1
	DefaultBackend       = spec.DefaultBackend
	DefaultCtxSize       = spec.DefaultCtxSize
	DefaultSlots         = spec.DefaultSlots
	DefaultModelRevision = "main"
)

// Backends lists the accepted values of a pool's backend attribute.
var Backends = []string{spec.BackendCPU, spec.BackendCUDA, spec.BackendMetal}

// Config is the desired state described by one HCL file or a folder of them,
// after variables are resolved and defaults applied. Slices are sorted by name.
type Config struct {
	Path   string   `json:"-"` // the file or folder that was loaded
	Files  []string `json:"-"` // the files read, sorted
	Nodes  []*Node  `json:"nodes"`
	Models []*Model `json:"models"`
	Pools  []*Pool  `json:"pools"`
	// Gateway, Watch and State configure how rbee runs, not what runs, so
	// they are not part of Hash: changing them never makes a plan stale.
	Gateway *Gateway      `json:"-"` // nil without a gateway block
	Watch   Watch         `json:"-"`
	State   *StateBackend `json:"-"` // nil without a state block: the Pebble store beside the file

	nodes  map[string]*Node
	models map[string]*Model
	pools  map[string]*Pool
}

// Node is a machine that runs a hive.
type Node struct {
	Name                  string            `json:"name"`
	Connection            string            `json:"connection"` // local | ssh
	Host                  string            `json:"host,omitempty"`
	Port                  int               `json:"port,omitempty"` // SSH port
	User                  string            `json:"user,omitempty"`
	Identity              string            `json:"identity,omitempty"`    // private key path, ~ expanded; empty = ssh-agent
	KnownHosts            string            `json:"known_hosts,omitempty"` // host keys to check against, ~ expanded; empty = ~/.ssh/known_hosts
	InstallDir            string            `json:"install_dir"`
	HivePort              int               `json:"hive_port"`
	Env                   map[string]string `json:"env,omitempty"`
	InsecureIgnoreHostKey bool              `json:"insecure_ignore_host_key,omitempty"`
	Binary                string            `json:"binary,omitempty"`       // hive binary to copy; empty = this rbee executable
	InstallMode           string            `json:"install_mode,omitempty"` // setsid | systemd (SSH nodes)
	// FileRoots are the absolute folders on the node that file:// model
	// sources may name; the hive refuses any other file. Empty: no limit.
	FileRoots []string `json:"file_roots,omitempty"`

	DeclRange hcl.Range            `json:"-"`
	ranges    map[string]hcl.Range // attribute name → expression range
	bad       map[string]bool      // attributes that failed to decode
}

// Model is a GGUF file to provision on the nodes whose pools use it.
type Model struct {
	Name     string `json:"name"`
	Source   string `json:"source"`             // hf:org/repo | file:///abs.gguf | https://… | synth:name
	File     string `json:"file,omitempty"`     // file inside an hf: repository
	Revision string `json:"revision,omitempty"` // hf: revision, default "main"
	SHA256   string `json:"sha256,omitempty"`   // optional pin, lowercase hex
	// Keep leaves the file on a node after no pool on that node uses the model
	// any more (as long as the model block exists). Default false: unused
	// copies are deleted.
	Keep bool `json:"keep,omitempty"`

	DeclRange hcl.Range `json:"-"`
	ranges    map[string]hcl.Range
	bad       map[string]bool
}

// Pool is a set of identical workers of one model, Replicas per node. The
// settings each worker gets (ctx_size, slots, flash_attn, ...) are declared
// once, in spec.Worker.
type Pool struct {
	Name     string   `json:"name"`
	Model    string   `json:"model"`
	Nodes    []string `json:"nodes"`
	Replicas int      `json:"replicas"`
	Port     int      `json:"port,omitempty"` // first worker port on each node; 0 = the hive picks (8001 and up)
	SLO      *SLO     `json:"slo,omitempty"`  // the slo block; nil: none
	spec.Worker

	DeclRange hcl.Range `json:"-"`
	ranges    map[string]hcl.Range
	bad       map[string]bool
}

// Node returns the node called name, or nil.
func (c *Config) Node(name string) *Node { return c.nodes[name] }

// Model returns the model called name, or nil.
func (c *Config) Model(name string) *Model { return c.models[name] }

// Pool returns the pool called name, or nil.
func (c *Config) Pool(name string) *Pool { return c.pools[name] }

// Hash is a stable digest of the resolved desired state (after variables and
// defaults). Plan files record it so apply can tell the configuration changed.
func (c *Config) Hash() string {
	b, err := json.Marshal(c)
	if err != nil {
		panic("config: hashing: " + err.Error()) // only plain data: cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Range returns where attribute attr is set, or the block header when it is not.
func (n *Node) Range(attr string) hcl.Range { return rangeOf(n.ranges, attr, n.DeclRange) }

// Range returns where attribute attr is set, or the block header when it is not.
func (m *Model) Range(attr string) hcl.Range { return rangeOf(m.ranges, attr, m.DeclRange) }

// Range returns where attribute attr is set, or the block header when it is not.
func (p *Pool) Range(attr string) hcl.Range { return rangeOf(p.ranges, attr, p.DeclRange) }

func rangeOf(m map[string]hcl.Range, attr string, def hcl.Range) hcl.Range {
	if r, ok := m[attr]; ok {
		return r
	}
	return def
}

// index sorts the blocks by name and builds the lookup maps. Duplicates keep
// the first declaration (validation reports the others).
func (c *Config) index() {
	sort.SliceStable(c.Nodes, func(i, j int) bool { return c.Nodes[i].Name < c.Nodes[j].Name })
	sort.SliceStable(c.Models, func(i, j int) bool { return c.Models[i].Name < c.Models[j].Name })
	sort.SliceStable(c.Pools, func(i, j int) bool { return c.Pools[i].Name < c.Pools[j].Name })
	c.nodes = make(map[string]*Node, len(c.Nodes))
	c.models = make(map[string]*Model, len(c.Models))
	c.pools = make(map[string]*Pool, len(c.Pools))
	for _, n := range c.Nodes {
		if _, dup := c.nodes[n.Name]; !dup {
			c.nodes[n.Name] = n
		}
	}
	for _, m := range c.Models {
		if _, dup := c.models[m.Name]; !dup {
			c.models[m.Name] = m
		}
	}
	for _, p := range c.Pools {
		if _, dup := c.pools[p.Name]; !dup {
			c.pools[p.Name] = p
		}
	}
}

// Placement is one model needed on one node.
type Placement struct {
	Model *Model
	Node  *Node
}

// Placements lists the (model, node) pairs the pools need, sorted by node then
// model. A model that no pool uses is placed nowhere.
func (c *Config) Placements() []Placement {
	seen := map[[2]string]bool{}
	var out []Placement
	for _, p := range c.Pools {
		m := c.models[p.Model]
		if m == nil {
			continue
		}
		for _, nn := range p.Nodes {
			n := c.nodes[nn]
			if n == nil || seen[[2]string{nn, m.Name}] {
				continue
			}
			seen[[2]string{nn, m.Name}] = true
			out = append(out, Placement{Model: m, Node: n})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Node.Name != out[j].Node.Name {
			return out[i].Node.Name < out[j].Node.Name
		}
		return out[i].Model.Name < out[j].Model.Name
	})
	return out
}

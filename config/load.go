package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// VarEnvPrefix is the prefix of environment variables that set HCL variables:
// RBEE_VAR_hf_token sets variable "hf_token".
const VarEnvPrefix = "RBEE_VAR_"

// LoadOptions say where variable values come from and where local nodes live.
//
// Variable precedence follows Terraform, lowest first: the default in the
// variable block, RBEE_VAR_<name> environment variables, -var-file files in
// the order given, then -var flags in the order given.
type LoadOptions struct {
	Vars     []string // -var values as "name=value"; later ones win
	VarFiles []string // -var-file paths (HCL attributes name = value)
	Environ  []string // environment as KEY=VALUE; nil means os.Environ()
	// StateDir is rbee's state folder; a local node without install_dir
	// installs its hive under <StateDir>/nodes/<name>. Empty means ".rbee"
	// beside the configuration.
	StateDir string
}

var topSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "node", LabelNames: []string{"name"}},
		{Type: "model", LabelNames: []string{"name"}},
		{Type: "pool", LabelNames: []string{"name"}},
		{Type: "gateway"},
		{Type: "watch"},
		{Type: "state", LabelNames: []string{"type"}},
	},
}

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "default"}, {Name: "description"}, {Name: "sensitive"}},
}

var nodeSchema = schema("connection", "host", "port", "user", "identity", "install_dir", "hive_port", "env",
	"insecure_ignore_host_key", "binary", "install_mode", "known_hosts", "file_roots")
var modelSchema = schema("source", "file", "revision", "sha256", "keep")
var poolSchema = withBlocks(schema(append([]string{"model", "nodes", "replicas", "port"}, workerAttrs()...)...), sloBlock)

func schema(names ...string) *hcl.BodySchema {
	s := &hcl.BodySchema{}
	for _, n := range names {
		s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: n})
	}
	return s
}

// Files lists the configuration files at path: the file itself, or every
// *.hcl file directly inside a folder, sorted.
func Files(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("configuration %s not found: create it (see rbee.hcl.example) or pass --config FILE|DIR", path)
		}
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	matches, err := filepath.Glob(filepath.Join(path, "*.hcl"))
	if err != nil {
		return nil, err
	}
	// Hidden files are not configuration: .rbee.lock.hcl, the model lock
	// file, lives in the folder too.
	matches = slices.DeleteFunc(matches, func(m string) bool { return strings.HasPrefix(filepath.Base(m), ".") })
	if len(matches) == 0 {
		return nil, fmt.Errorf("no *.hcl files in folder %s: add one (see rbee.hcl.example) or pass --config FILE", path)
	}
	sort.Strings(matches)
	return matches, nil
}

// Load reads the configuration at path (a file or a folder of *.hcl files),
// resolves variables, applies defaults and validates it. The Config is nil
// when the diagnostics contain errors.
func Load(path string, opts LoadOptions) (*Config, Diagnostics) {
	files, err := Files(path)
	if err != nil {
		return nil, Diagnostics{Diags: hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read configuration", Detail: err.Error()}}}
	}
	srcs := map[string][]byte{}
	budget := MaxConfigBytes
	for _, f := range files {
		b, diag := readSource(f, budget)
		if diag != nil {
			return nil, Diagnostics{Diags: hcl.Diagnostics{diag}}
		}
		srcs[f], budget = b, budget-len(b)
	}
	if opts.StateDir == "" {
		base := path
		if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
			base = filepath.Dir(path)
		}
		opts.StateDir = filepath.Join(base, ".rbee")
	}
	cfg, diags := Parse(srcs, opts)
	if cfg != nil {
		cfg.Path = path
	}
	return cfg, diags
}

// Parse decodes and validates configuration sources (file name → content).
// It never panics on malformed input. The Config is nil when there are errors.
func Parse(srcs map[string][]byte, opts LoadOptions) (*Config, Diagnostics) {
	d := &decoder{srcs: srcs, opts: opts, env: envMap(opts.Environ), budget: MaxConfigBytes}
	cfg := d.decode()
	out := Diagnostics{Diags: d.diags, Sources: srcs}
	if out.HasErrors() {
		return nil, out
	}
	return cfg, out
}

func envMap(environ []string) map[string]string {
	if environ == nil {
		environ = os.Environ()
	}
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

type decoder struct {
	srcs         map[string][]byte
	opts         LoadOptions
	env          map[string]string
	diags        hcl.Diagnostics
	vars         map[string]*variable
	locals       map[string]*local
	budget       int // bytes of source still allowed (MaxConfigBytes in all)
	localsBudget int // bytes the locals may still hold (MaxLocalsBytes in all)
}

type variable struct {
	name      string
	value     cty.Value
	set       bool
	sensitive bool // sensitive = true: the value may only be used in env
	declRange hcl.Range
}

func (d *decoder) decode() *Config {
	names := make([]string, 0, len(d.srcs))
	for n := range d.srcs {
		names = append(names, n)
	}
	sort.Strings(names)
	cfg := &Config{Files: names}
	var blocks []*hcl.Block
	for _, name := range names {
		src, diags := prepareSource(name, d.srcs[name], &d.budget)
		d.diags = append(d.diags, diags...)
		if diags.HasErrors() {
			delete(d.srcs, name)
			continue
		}
		d.srcs[name] = src
		f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
		d.diags = append(d.diags, diags...)
		if f == nil || f.Body == nil {
			continue
		}
		content, diags := f.Body.Content(topSchema)
		d.diags = append(d.diags, diags...)
		if content != nil {
			blocks = append(blocks, content.Blocks...)
		}
	}
	d.vars = map[string]*variable{}
	for _, b := range blocks {
		if b.Type == "variable" {
			d.declareVariable(b)
		}
	}
	d.resolveVariables()
	d.declareLocals(blocks)
	d.resolveLocals()
	ctx := d.evalContext()
	for _, b := range blocks {
		switch b.Type {
		case "node":
			cfg.Nodes = append(cfg.Nodes, d.decodeNode(ctx, b))
		case "model":
			cfg.Models = append(cfg.Models, d.decodeModel(ctx, b))
		case "pool":
			cfg.Pools = append(cfg.Pools, d.decodePool(ctx, b))
		default:
			d.decodeSetting(ctx, cfg, b)
		}
	}
	cfg.index()
	d.diags = append(d.diags, validate(cfg)...)
	return cfg
}

func expandHome(p, home string) string {
	if home == "" {
		return p
	}
	if p == "~" {
		return home
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(home, p[2:])
	}
	return p
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

package config

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
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
var poolSchema = schema("model", "nodes", "replicas", "backend", "device", "ctx_size", "slots", "threads",
	"port", "idle_timeout", "load_timeout")

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
	srcs   map[string][]byte
	opts   LoadOptions
	env    map[string]string
	diags  hcl.Diagnostics
	vars   map[string]*variable
	locals map[string]*local
	budget int // bytes of source still allowed (MaxConfigBytes in all)
}

type variable struct {
	name      string
	value     cty.Value
	set       bool
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

func (d *decoder) declareVariable(b *hcl.Block) {
	name := b.Labels[0]
	if !hclsyntax.ValidIdentifier(name) {
		d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid variable name",
			Detail: fmt.Sprintf("%q is not a valid variable name: use letters, digits, underscores and dashes, starting with a letter.", name), Subject: b.LabelRanges[0].Ptr()})
		return
	}
	if prev, dup := d.vars[name]; dup {
		d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate variable",
			Detail: fmt.Sprintf("variable %q is already declared at %s; each name can be declared once.", name, prev.declRange), Subject: b.LabelRanges[0].Ptr()})
		return
	}
	v := &variable{name: name, value: cty.NullVal(cty.DynamicPseudoType), declRange: b.DefRange}
	d.vars[name] = v
	content, diags := b.Body.Content(variableSchema)
	d.diags = append(d.diags, diags...)
	if content == nil {
		return
	}
	if a, ok := content.Attributes["default"]; ok {
		val, diags := a.Expr.Value(nil)
		d.diags = append(d.diags, diags...)
		if !diags.HasErrors() {
			v.value, v.set = val, true
		}
	}
	for _, n := range []string{"description", "sensitive"} {
		if a, ok := content.Attributes[n]; ok {
			_, diags := a.Expr.Value(nil)
			d.diags = append(d.diags, diags...)
		}
	}
}

// resolveVariables applies RBEE_VAR_ environment variables, -var-file files
// and -var flags over the defaults, in that order.
func (d *decoder) resolveVariables() {
	envNames := make([]string, 0)
	for k := range d.env {
		if strings.HasPrefix(k, VarEnvPrefix) {
			envNames = append(envNames, k)
		}
	}
	sort.Strings(envNames)
	for _, k := range envNames {
		name := strings.TrimPrefix(k, VarEnvPrefix)
		if v, ok := d.vars[name]; ok { // undeclared ones are ignored, as Terraform does
			d.setFromString(v, d.env[k], "environment variable "+k)
		}
	}
	for _, path := range d.opts.VarFiles {
		d.applyVarFile(path)
	}
	for _, kv := range d.opts.Vars {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid -var option",
				Detail: fmt.Sprintf("-var %q must have the form name=value, for example -var hf_token=abc.", kv)})
			continue
		}
		v, declared := d.vars[name]
		if !declared {
			d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Undeclared variable",
				Detail: fmt.Sprintf("-var sets %q, but no variable %q block exists. Declared variables: %s.", name, name, d.varNames())})
			continue
		}
		d.setFromString(v, val, "-var "+name)
	}
	for _, name := range sortedKeys(d.vars) {
		v := d.vars[name]
		if !v.set {
			d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "No value for required variable",
				Detail:  fmt.Sprintf("variable %q has no default; set it with -var %s=VALUE, a -var-file, or the environment variable %s%s.", name, name, VarEnvPrefix, name),
				Subject: v.declRange.Ptr()})
		}
	}
}

func (d *decoder) varNames() string {
	if len(d.vars) == 0 {
		return "(none)"
	}
	return strings.Join(sortedKeys(d.vars), ", ")
}

// setFromString sets a variable from a command-line or environment string. A
// string default (or none) keeps the text as is; other default types parse the
// text as an HCL expression and convert it, as Terraform does.
func (d *decoder) setFromString(v *variable, raw, origin string) {
	ty := v.value.Type()
	if ty == cty.DynamicPseudoType || ty == cty.String {
		v.value, v.set = cty.StringVal(raw), true
		return
	}
	expr, diags := hclsyntax.ParseExpression([]byte(raw), origin, hcl.InitialPos)
	if diags.HasErrors() {
		d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid variable value",
			Detail: fmt.Sprintf("%s: %q is not a valid %s value.", origin, raw, ty.FriendlyName())})
		return
	}
	val, diags := expr.Value(nil)
	if !diags.HasErrors() {
		val, err := convert.Convert(val, ty)
		if err == nil {
			v.value, v.set = val, true
			return
		}
	}
	d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid variable value",
		Detail: fmt.Sprintf("%s: %q is not a valid %s value (the type of the variable's default).", origin, raw, ty.FriendlyName())})
}

func (d *decoder) applyVarFile(path string) {
	src, diag := readSource(path, d.budget)
	if diag != nil {
		if diag.Summary == "Cannot read configuration" {
			diag.Summary, diag.Detail = "Cannot read variable file", "-var-file "+diag.Detail
		}
		d.diags = append(d.diags, diag)
		return
	}
	src, diags := prepareSource(path, src, &d.budget)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return
	}
	d.srcs[path] = src
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	d.diags = append(d.diags, diags...)
	if f == nil {
		return
	}
	attrs, diags := f.Body.JustAttributes()
	d.diags = append(d.diags, diags...)
	for _, name := range sortedKeys(attrs) {
		a := attrs[name]
		v, ok := d.vars[name]
		if !ok {
			d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Value for undeclared variable",
				Detail:  fmt.Sprintf("%s sets %q, but no variable %q block exists; the value is ignored. Declared variables: %s.", path, name, name, d.varNames()),
				Subject: a.NameRange.Ptr()})
			continue
		}
		val, diags := a.Expr.Value(nil)
		d.diags = append(d.diags, diags...)
		if diags.HasErrors() {
			continue
		}
		if ty := v.value.Type(); ty != cty.DynamicPseudoType {
			conv, err := convert.Convert(val, ty)
			if err != nil {
				d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid variable value",
					Detail: fmt.Sprintf("variable %q must be a %s (the type of its default): %v.", name, ty.FriendlyName(), err), Subject: a.Expr.Range().Ptr()})
				continue
			}
			val = conv
		}
		v.value, v.set = val, true
	}
}

// evalContext exposes var.<name>, local.<name> and the functions env(),
// lower(), upper().
func (d *decoder) evalContext() *hcl.EvalContext {
	vals := map[string]cty.Value{}
	for name, v := range d.vars {
		if v.set {
			vals[name] = v.value
		} else {
			vals[name] = cty.DynamicVal
		}
	}
	locals := map[string]cty.Value{}
	for name, l := range d.locals {
		locals[name] = l.value
	}
	env := d.env
	envFn := function.New(&function.Spec{
		Params: []function.Parameter{{Name: "name", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.StringVal(env[args[0].AsString()]), nil
		},
	})
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(vals), "local": cty.ObjectVal(locals)},
		Functions: map[string]function.Function{"env": envFn, "lower": stdlib.LowerFunc, "upper": stdlib.UpperFunc},
	}
}

// attrs reads the attributes of one block, recording where each is set and
// which failed to decode (validation skips those).
type attrs struct {
	d      *decoder
	ctx    *hcl.EvalContext
	attrs  hcl.Attributes
	ranges map[string]hcl.Range
	bad    map[string]bool
}

func (d *decoder) content(ctx *hcl.EvalContext, b *hcl.Block, s *hcl.BodySchema) *attrs {
	content, diags := b.Body.Content(s)
	d.diags = append(d.diags, diags...)
	a := &attrs{d: d, ctx: ctx, ranges: map[string]hcl.Range{}, bad: map[string]bool{}}
	if content != nil {
		a.attrs = content.Attributes
		for n, at := range content.Attributes {
			a.ranges[n] = at.Expr.Range()
		}
	}
	return a
}

// value evaluates attribute name converted to ty; ok is false when it is absent, null or invalid.
func (a *attrs) value(name string, ty cty.Type) (cty.Value, bool) {
	at, ok := a.attrs[name]
	if !ok {
		return cty.NilVal, false
	}
	if a.undeclared(at) {
		a.bad[name] = true
		return cty.NilVal, false
	}
	val, diags := at.Expr.Value(a.ctx)
	a.d.diags = append(a.d.diags, diags...)
	if diags.HasErrors() {
		a.bad[name] = true
		return cty.NilVal, false
	}
	if val.IsNull() {
		return cty.NilVal, false
	}
	conv, err := convert.Convert(val, ty)
	if err != nil || !conv.IsWhollyKnown() {
		msg := "a value that is not known"
		if err != nil {
			msg = err.Error()
		}
		a.d.diags = append(a.d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Incorrect attribute value type",
			Detail: fmt.Sprintf("%s must be a %s: %s.", name, ty.FriendlyName(), msg), Subject: at.Expr.Range().Ptr(), Expression: at.Expr, EvalContext: a.ctx})
		a.bad[name] = true
		return cty.NilVal, false
	}
	return conv, true
}

// undeclared reports each var.NAME without a variable block and each
// local.NAME without a definition in at, saying how to fix it, and whether
// there was one.
func (a *attrs) undeclared(at *hcl.Attribute) bool {
	found := false
	for _, tr := range at.Expr.Variables() {
		if name, ok := traversalName(tr, "var"); ok {
			if _, declared := a.d.vars[name]; !declared {
				found = true
				a.d.diags = append(a.d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Undeclared variable",
					Detail: fmt.Sprintf("var.%s is used, but no variable %q block exists.%s Declare it with variable %q { default = \"\" } or fix the name. Declared variables: %s.",
						name, name, suggest(name, sortedKeys(a.d.vars)), name, a.d.varNames()),
					Subject: tr.SourceRange().Ptr()})
			}
		}
		if name, ok := traversalName(tr, "local"); ok {
			if _, defined := a.d.locals[name]; !defined {
				found = true
				a.d.diags = append(a.d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Undefined local value",
					Detail: fmt.Sprintf("local.%s is used, but no locals block defines %q.%s Define it in a locals { %s = ... } block or fix the name.",
						name, name, suggest(name, sortedKeys(a.d.locals)), name),
					Subject: tr.SourceRange().Ptr()})
			}
		}
	}
	return found
}

func (a *attrs) str(name string, dst *string) {
	if v, ok := a.value(name, cty.String); ok {
		*dst = v.AsString()
	}
}

func (a *attrs) boolean(name string, dst *bool) {
	if v, ok := a.value(name, cty.Bool); ok {
		*dst = v.True()
	}
}

func (a *attrs) integer(name string, dst *int) {
	v, ok := a.value(name, cty.Number)
	if !ok {
		return
	}
	bf := v.AsBigFloat()
	i, acc := bf.Int64()
	if !bf.IsInt() || acc != 0 || i < -1<<31 || i > 1<<31-1 {
		a.d.diags = append(a.d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid number",
			Detail: fmt.Sprintf("%s must be a whole number between %d and %d; got %s.", name, -1<<31, 1<<31-1, bf.Text('g', 10)), Subject: a.ranges[name].Ptr()})
		a.bad[name] = true
		return
	}
	*dst = int(i)
}

// strList reads a list of strings. Elements are converted one by one: cty's
// whole-list conversion unifies element types in more than linear time, which
// shows with pools over thousands of nodes.
func (a *attrs) strList(name string, dst *[]string) {
	v, ok := a.value(name, cty.DynamicPseudoType)
	if !ok {
		return
	}
	ty := v.Type()
	if !(ty.IsTupleType() || ty.IsListType() || ty.IsSetType()) {
		a.d.diags = append(a.d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Incorrect attribute value type",
			Detail: fmt.Sprintf("%s must be a list of strings, such as [\"a\", \"b\"]; got %s.", name, ty.FriendlyName()), Subject: a.ranges[name].Ptr()})
		a.bad[name] = true
		return
	}
	out := make([]string, 0, v.LengthInt())
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		s, err := convert.Convert(e, cty.String)
		if err != nil || s.IsNull() {
			msg := "null is not allowed"
			if err != nil {
				msg = err.Error()
			}
			a.d.diags = append(a.d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Incorrect attribute value type",
				Detail: fmt.Sprintf("%s must be a list of strings: %s.", name, msg), Subject: a.ranges[name].Ptr()})
			a.bad[name] = true
			return
		}
		out = append(out, s.AsString())
	}
	*dst = out
}

func (a *attrs) strMap(name string, dst *map[string]string) {
	v, ok := a.value(name, cty.Map(cty.String))
	if !ok {
		return
	}
	out := map[string]string{}
	for it := v.ElementIterator(); it.Next(); {
		k, e := it.Element()
		if e.IsNull() {
			a.d.diags = append(a.d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Null in map",
				Detail: fmt.Sprintf("%s values must be strings; null is not allowed (key %q).", name, k.AsString()), Subject: a.ranges[name].Ptr()})
			a.bad[name] = true
			return
		}
		out[k.AsString()] = e.AsString()
	}
	*dst = out
}

func (a *attrs) duration(name string, dst *time.Duration) {
	var s string
	a.str(name, &s)
	if s == "" || a.bad[name] {
		return
	}
	dur, err := time.ParseDuration(s)
	if err != nil || dur <= 0 {
		a.d.diags = append(a.d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid duration",
			Detail: fmt.Sprintf("%s must be a positive duration such as \"90s\", \"5m\" or \"1h30m\"; got %q.", name, s), Subject: a.ranges[name].Ptr()})
		a.bad[name] = true
		return
	}
	*dst = dur
}

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
	p := &Pool{Name: b.Labels[0], DeclRange: b.DefRange, ranges: a.ranges,
		Replicas: DefaultReplicas, Backend: DefaultBackend, Device: DefaultDevice,
		CtxSize: DefaultCtxSize, Slots: DefaultSlots, Threads: DefaultThreads}
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
	a.str("backend", &p.Backend)
	a.integer("device", &p.Device)
	a.integer("ctx_size", &p.CtxSize)
	a.integer("slots", &p.Slots)
	a.integer("threads", &p.Threads)
	a.integer("port", &p.Port)
	a.duration("idle_timeout", &p.IdleTimeout)
	a.duration("load_timeout", &p.LoadTimeout)
	p.ranges["label"] = b.LabelRanges[0]
	p.bad = a.bad
	return p
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

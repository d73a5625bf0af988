package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

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
	if a, ok := content.Attributes["description"]; ok {
		_, diags := a.Expr.Value(nil)
		d.diags = append(d.diags, diags...)
	}
	if a, ok := content.Attributes["sensitive"]; ok {
		d.declareSensitive(v, a)
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
	if bad := checkNesting(origin, []byte(raw)); bad != nil {
		d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid variable value",
			Detail: fmt.Sprintf("%s: %s: %s", origin, bad.Summary, bad.Detail)})
		return
	}
	expr, diags := hclsyntax.ParseExpression([]byte(raw), origin, hcl.InitialPos)
	if diags.HasErrors() {
		d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid variable value",
			Detail: fmt.Sprintf("%s: %s is not a valid %s value.", origin, v.shown(raw), ty.FriendlyName())})
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
		Detail: fmt.Sprintf("%s: %s is not a valid %s value (the type of the variable's default).", origin, v.shown(raw), ty.FriendlyName())})
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
			vals[name] = v.evalValue()
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

package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/rbee-dev/rbee/secret"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// sensitiveMark marks the values of variables declared sensitive = true as
// HCL evaluates expressions, so that every value computed from one carries it.
type markKind string

const sensitiveMark markKind = "sensitive"

// sensitiveSinks are the attributes a sensitive value may be used in: rbee
// never prints them (a node's env is shown as (sensitive), recorded as
// digests and delivered only to the hive's private env file).
var sensitiveSinks = map[string]bool{"env": true}

// declareSensitive reads a variable block's sensitive attribute.
func (d *decoder) declareSensitive(v *variable, a *hcl.Attribute) {
	val, diags := a.Expr.Value(nil)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return
	}
	b, err := convert.Convert(val, cty.Bool)
	if err != nil || b.IsNull() || !b.IsKnown() {
		d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid sensitive value",
			Detail: fmt.Sprintf("sensitive of variable %q must be true or false.", v.name), Subject: a.Expr.Range().Ptr()})
		return
	}
	v.sensitive = b.True()
}

// evalValue is the variable's value as expressions see it: marked when the
// variable is sensitive.
func (v *variable) evalValue() cty.Value {
	if v.sensitive {
		return v.value.Mark(sensitiveMark)
	}
	return v.value
}

// shown is raw as a message may quote it: cut when long, and never the
// value of a sensitive variable.
func (v *variable) shown(raw string) string {
	if v.sensitive {
		return secret.Redacted
	}
	return clip(raw)
}

// unmark takes the sensitive marks off val, the value of attribute name.
// Locals keep them (keep), so that what uses a local knows; a sink accepts
// them; any other attribute refuses a sensitive value with an error that
// names where it comes from, since rbee would print it in plans and state.
func (a *attrs) unmark(name string, at *hcl.Attribute, val cty.Value) (cty.Value, []cty.PathValueMarks, bool) {
	val, marks := val.UnmarkDeepWithPaths()
	if len(marks) == 0 || a.keepMarks || sensitiveSinks[name] {
		return val, marks, true
	}
	a.d.diags = append(a.d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Sensitive value not allowed here",
		Detail: fmt.Sprintf("%s uses a sensitive value (%s); rbee shows the value of %s in plans and state, so a sensitive value may only be used in a node's env, whose values are never printed. Move it into env, or drop sensitive = true from the variable if the value is not secret.",
			name, a.sensitiveSources(at), name),
		Subject: at.Expr.Range().Ptr()})
	return cty.NilVal, nil, false
}

// sensitiveSources names the sensitive variables and the locals holding a
// sensitive value that expression at refers to.
func (a *attrs) sensitiveSources(at *hcl.Attribute) string {
	var names []string
	for _, tr := range at.Expr.Variables() {
		if n, ok := traversalName(tr, "var"); ok && a.d.vars[n] != nil && a.d.vars[n].sensitive {
			names = append(names, "var."+n)
		}
		if n, ok := traversalName(tr, "local"); ok && a.d.locals[n] != nil && a.d.locals[n].value.ContainsMarked() {
			names = append(names, "local."+n)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) == 0 {
		return "from a variable declared sensitive = true"
	}
	return "from " + strings.Join(names, ", ")
}

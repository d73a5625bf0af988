package config

import (
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// attrs reads the attributes of one block, recording where each is set and
// which failed to decode (validation skips those).
type attrs struct {
	d      *decoder
	ctx    *hcl.EvalContext
	attrs  hcl.Attributes
	blocks hcl.Blocks // nested blocks the schema declares
	ranges map[string]hcl.Range
	bad    map[string]bool
	// keepMarks keeps the sensitive marks on values (locals): see unmark.
	keepMarks bool
}

func (d *decoder) content(ctx *hcl.EvalContext, b *hcl.Block, s *hcl.BodySchema) *attrs {
	content, diags := b.Body.Content(s)
	d.diags = append(d.diags, diags...)
	a := &attrs{d: d, ctx: ctx, ranges: map[string]hcl.Range{}, bad: map[string]bool{}}
	if content != nil {
		a.attrs, a.blocks = content.Attributes, content.Blocks
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
	val, marks, ok := a.unmark(name, at, val)
	if !ok {
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
	if a.keepMarks && len(marks) > 0 {
		conv = conv.MarkWithPaths(marks)
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

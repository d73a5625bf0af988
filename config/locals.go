package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// local is one name = expression of a locals block.
type local struct {
	attr  *hcl.Attribute
	value cty.Value
	done  bool
}

// declareLocals collects the attributes of every locals block; a name may be
// defined once across all files.
func (d *decoder) declareLocals(blocks []*hcl.Block) {
	d.locals = map[string]*local{}
	for _, b := range blocks {
		if b.Type != "locals" {
			continue
		}
		attrs, diags := b.Body.JustAttributes()
		d.diags = append(d.diags, diags...)
		for _, name := range sortedKeys(attrs) {
			at := attrs[name]
			if prev, dup := d.locals[name]; dup {
				d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate local value",
					Detail:  fmt.Sprintf("local.%s is already defined at %s; each local name can be defined once.", name, prev.attr.NameRange),
					Subject: at.NameRange.Ptr()})
				continue
			}
			d.locals[name] = &local{attr: at, value: cty.DynamicVal}
		}
	}
}

// resolveLocals evaluates the locals in dependency order, so one may use
// another whatever the order they are written in. A reference to a missing
// local and a cycle are errors at the expression.
func (d *decoder) resolveLocals() {
	pending := sortedKeys(d.locals)
	for len(pending) > 0 {
		var next []string
		for _, name := range pending {
			l := d.locals[name]
			if !d.localsReady(l.attr) {
				next = append(next, name)
				continue
			}
			a := &attrs{d: d, ctx: d.evalContext(), attrs: hcl.Attributes{name: l.attr}, bad: map[string]bool{}}
			if v, ok := a.value(name, cty.DynamicPseudoType); ok {
				l.value = v
			} else {
				l.value = cty.NullVal(cty.DynamicPseudoType)
			}
			l.done = true
		}
		if len(next) == len(pending) { // no progress: the rest wait on each other
			for _, name := range next {
				d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cycle in local values",
					Detail:  fmt.Sprintf("local.%s depends on itself through %s; break the cycle.", name, strings.Join(prefixed("local.", next), ", ")),
					Subject: d.locals[name].attr.Expr.Range().Ptr()})
				d.locals[name].value = cty.NullVal(cty.DynamicPseudoType)
			}
			return
		}
		pending = next
	}
}

// localsReady reports whether every local that at uses has been evaluated
// (a missing one counts as ready: evaluating reports it).
func (d *decoder) localsReady(at *hcl.Attribute) bool {
	for _, tr := range at.Expr.Variables() {
		if name, ok := traversalName(tr, "local"); ok {
			if l, defined := d.locals[name]; defined && !l.done {
				return false
			}
		}
	}
	return true
}

// traversalName returns NAME of a root.NAME reference.
func traversalName(tr hcl.Traversal, root string) (string, bool) {
	if tr.RootName() != root || len(tr) < 2 {
		return "", false
	}
	step, ok := tr[1].(hcl.TraverseAttr)
	if !ok {
		return "", false
	}
	return step.Name, true
}

func prefixed(prefix string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	sort.Strings(out)
	return out
}

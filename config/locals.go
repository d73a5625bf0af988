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
	attr   *hcl.Attribute
	value  cty.Value
	done   bool
	failed bool // its value is in error (and null): the locals using it are not evaluated
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
// local and a cycle are errors at the expression. It takes time linear in
// the size of the locals: each is evaluated once, against a context that
// holds only the locals it uses.
func (d *decoder) resolveLocals() {
	deps := map[string][]string{}       // local → the defined locals it uses
	dependents := map[string][]string{} // local → the locals that use it
	waiting := map[string]int{}         // local → how many of its deps are not evaluated yet
	for _, name := range sortedKeys(d.locals) {
		seen := map[string]bool{}
		for _, tr := range d.locals[name].attr.Expr.Variables() {
			if dep, ok := traversalName(tr, "local"); ok && !seen[dep] && d.locals[dep] != nil {
				seen[dep] = true
				deps[name] = append(deps[name], dep)
				dependents[dep] = append(dependents[dep], name)
			}
		}
		waiting[name] = len(deps[name])
	}
	base := d.evalContext()
	d.localsBudget = MaxLocalsBytes
	var ready []string
	for _, name := range sortedKeys(d.locals) {
		if waiting[name] == 0 {
			ready = append(ready, name)
		}
	}
	for len(ready) > 0 {
		name := ready[0]
		ready = ready[1:]
		d.evalLocal(base, name, deps[name])
		for _, u := range dependents[name] {
			if waiting[u]--; waiting[u] == 0 {
				ready = append(ready, u)
			}
		}
	}
	var cycle []string
	for _, name := range sortedKeys(d.locals) {
		if !d.locals[name].done {
			cycle = append(cycle, name)
		}
	}
	for _, name := range cycle {
		d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cycle in local values",
			Detail:  fmt.Sprintf("local.%s depends on itself through %s; break the cycle.", name, namesList(prefixed("local.", cycle))),
			Subject: d.locals[name].attr.Expr.Range().Ptr()})
		d.locals[name].value = cty.NullVal(cty.DynamicPseudoType)
	}
}

// evalLocal evaluates local name, whose locals deps are all evaluated.
func (d *decoder) evalLocal(base *hcl.EvalContext, name string, deps []string) {
	l := d.locals[name]
	l.value, l.done = cty.NullVal(cty.DynamicPseudoType), true
	vals := make(map[string]cty.Value, len(deps))
	for _, dep := range deps {
		if d.locals[dep].failed { // reported there; saying it again for each user is noise
			l.failed = true
			return
		}
		vals[dep] = d.locals[dep].value
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": base.Variables["var"], "local": cty.ObjectVal(vals)}, Functions: base.Functions}
	a := &attrs{d: d, ctx: ctx, attrs: hcl.Attributes{name: l.attr}, bad: map[string]bool{}, keepMarks: true}
	v, ok := a.value(name, cty.DynamicPseudoType)
	if !ok {
		l.failed = a.bad[name]
		return
	}
	bare, _ := v.UnmarkDeep() // sensitive marks (see unmark) are no size
	if bad := boundLocal(name, bare, l.attr.Expr.Range(), &d.localsBudget); bad != nil {
		d.diags = append(d.diags, bad)
		l.failed = true
		return
	}
	l.value = v
}

// namesList joins names, at most 10 of them.
func namesList(names []string) string {
	if len(names) > 10 {
		return strings.Join(names[:10], ", ") + fmt.Sprintf(" and %d more", len(names)-10)
	}
	return strings.Join(names, ", ")
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

package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Bounds on the values that locals compute. A local may build on another
// ("${local.a}${local.a}" doubles it), so a short file could otherwise ask
// for more memory than any machine has; these stop the chain at the local
// that passes them.
const (
	MaxValueBytes  = 256 << 10 // one local: its string bytes plus one per element
	MaxLocalsBytes = 64 << 20  // all locals together
)

// valueShape measures v without recursion, stopping once it passes
// MaxValueBytes or MaxNesting levels.
func valueShape(v cty.Value) (size, depth int) {
	type item struct {
		v     cty.Value
		depth int
	}
	stack := []item{{v, 0}}
	for len(stack) > 0 && size <= MaxValueBytes && depth <= MaxNesting {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		depth = max(depth, it.depth)
		v := it.v
		switch {
		case v.IsNull() || !v.IsKnown():
			size++
		case v.Type() == cty.String:
			size += len(v.AsString())
		case v.CanIterateElements():
			for e := v.ElementIterator(); e.Next() && size <= MaxValueBytes; {
				k, ev := e.Element()
				if k.Type() == cty.String {
					size += len(k.AsString())
				}
				size++
				stack = append(stack, item{ev, it.depth + 1})
			}
		default:
			size += 8
		}
	}
	return size, depth
}

// boundLocal reports a local whose value passes MaxValueBytes, MaxNesting or
// the budget left for all locals (*budget, which it charges), or nil.
func boundLocal(name string, v cty.Value, at hcl.Range, budget *int) *hcl.Diagnostic {
	size, depth := valueShape(v)
	*budget -= size
	var detail string
	switch {
	case size > MaxValueBytes:
		detail = fmt.Sprintf("local.%s is more than %s; a local value may hold at most that (string bytes, plus one per element).", name, byteSize(MaxValueBytes))
	case depth > MaxNesting:
		detail = fmt.Sprintf("local.%s nests more than %d levels deep (through the locals it uses); a value may nest at most %d.", name, MaxNesting, MaxNesting)
	case *budget < 0:
		detail = fmt.Sprintf("the locals up to local.%s hold more than %s together, the most a configuration's locals may hold.", name, byteSize(MaxLocalsBytes))
	default:
		return nil
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Value too large", Subject: at.Ptr(), Detail: detail + " Say less, or say it once."}
}

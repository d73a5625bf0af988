package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Bounds on the shape of an expression. HCL's parser and evaluator recurse
// once per level of nesting and once per operator of a chain, and Go cannot
// recover from a stack overflow, so input past these bounds is refused before
// it is parsed. Real configurations stay far below both.
const (
	// MaxNesting is how many brackets, braces, parentheses, quoted strings,
	// heredocs, template sequences and template directives may be open at
	// once.
	MaxNesting = 100
	// MaxOperators is how many operators (unary, binary, conditional and
	// index) and template interpolations one expression may chain, counting
	// those of the expressions it is nested in.
	MaxOperators = 1000
)

// nestFrame is one open bracket (or the top level) and the operators counted
// in its current expression.
type nestFrame struct {
	ops       int
	directive bool // a %{ if } or %{ for } template directive
}

// checkNesting lexes src (the lexer is a state machine: it does not recurse)
// and reports the first place where the nesting or the operator chain goes
// past its bound, or nil.
func checkNesting(name string, src []byte) *hcl.Diagnostic {
	toks, _ := hclsyntax.LexConfig(src, name, hcl.InitialPos)
	stack := make([]nestFrame, 1, 16) // stack[0] is the top level
	ops, directives := 0, 0
	prev := hclsyntax.TokenNil
	for i, t := range toks {
		top := &stack[len(stack)-1]
		switch t.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen, hclsyntax.TokenOQuote,
			hclsyntax.TokenOHeredoc, hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			if t.Type == hclsyntax.TokenOBrack && endsOperand(prev) { // an index: x[0]
				top.ops++
				if ops++; ops > MaxOperators {
					return tooComplex(t.Range)
				}
			}
			if t.Type == hclsyntax.TokenTemplateInterp { // each interpolation copies a value into the string
				top.ops++
				if ops++; ops > MaxOperators {
					return tooComplex(t.Range)
				}
			}
			if isFor(toks, i) {
				return forUnsupported(toks[i+1].Range)
			}
			if t.Type == hclsyntax.TokenTemplateControl {
				directives = max(0, directives+directiveStep(toks, i))
			}
			stack = append(stack, nestFrame{})
			if len(stack)-1+directives > MaxNesting {
				return tooDeep(t.Range)
			}
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen, hclsyntax.TokenCQuote,
			hclsyntax.TokenCHeredoc, hclsyntax.TokenTemplateSeqEnd:
			if len(stack) > 1 {
				ops -= top.ops
				stack = stack[:len(stack)-1]
			}
		case hclsyntax.TokenComma, hclsyntax.TokenEqual, hclsyntax.TokenFatArrow:
			ops -= top.ops
			top.ops = 0
		case hclsyntax.TokenBang, hclsyntax.TokenMinus, hclsyntax.TokenPlus, hclsyntax.TokenStar, hclsyntax.TokenSlash,
			hclsyntax.TokenPercent, hclsyntax.TokenEqualOp, hclsyntax.TokenNotEqual, hclsyntax.TokenLessThan,
			hclsyntax.TokenLessThanEq, hclsyntax.TokenGreaterThan, hclsyntax.TokenGreaterThanEq, hclsyntax.TokenAnd,
			hclsyntax.TokenOr, hclsyntax.TokenQuestion:
			top.ops++
			if ops++; ops > MaxOperators {
				return tooComplex(t.Range)
			}
		}
		if t.Type != hclsyntax.TokenNewline && t.Type != hclsyntax.TokenComment {
			prev = t.Type
		}
	}
	return nil
}

// endsOperand reports whether a token of type t can end an operand, so that
// a [ after it indexes rather than starts a tuple.
func endsOperand(t hclsyntax.TokenType) bool {
	switch t {
	case hclsyntax.TokenIdent, hclsyntax.TokenNumberLit, hclsyntax.TokenCBrack, hclsyntax.TokenCParen,
		hclsyntax.TokenCBrace, hclsyntax.TokenCQuote, hclsyntax.TokenCHeredoc:
		return true
	}
	return false
}

// isFor reports whether the bracket, brace or template directive opening at
// toks[i] starts a for expression or directive. They are refused: they
// multiply work by the length of a collection (nested, by the product of
// several), which no bound on the file can stop, and a fleet needs none.
func isFor(toks hclsyntax.Tokens, i int) bool {
	switch toks[i].Type {
	case hclsyntax.TokenOBrack, hclsyntax.TokenOBrace, hclsyntax.TokenTemplateControl:
		j := i + 1
		for j < len(toks) && toks[j].Type == hclsyntax.TokenNewline {
			j++
		}
		return j < len(toks) && toks[j].Type == hclsyntax.TokenIdent && string(toks[j].Bytes) == "for"
	}
	return false
}

func forUnsupported(r hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unsupported for expression", Subject: r.Ptr(),
		Detail: "rbee configurations have no for expressions or %{ for } directives: their cost grows with the product of the collections they walk. Write the values out, or name them once in locals."}
}

// directiveStep is +1 for the %{ if } or %{ for } opening a directive at
// toks[i], -1 for %{ endif } or %{ endfor }, and 0 otherwise: directives
// nest until they are closed, across template sequences.
func directiveStep(toks hclsyntax.Tokens, i int) int {
	if i+1 >= len(toks) || toks[i+1].Type != hclsyntax.TokenIdent {
		return 0
	}
	switch string(toks[i+1].Bytes) {
	case "if", "for":
		return 1
	case "endif", "endfor":
		return -1
	}
	return 0
}

func tooDeep(r hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Nested too deeply", Subject: r.Ptr(),
		Detail: fmt.Sprintf("this opens level %d of nesting; a configuration may nest at most %d levels of brackets, braces, parentheses, strings and templates. Flatten the value, or name its parts in locals.", MaxNesting+1, MaxNesting)}
}

func tooComplex(r hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Expression too long", Subject: r.Ptr(),
		Detail: fmt.Sprintf("this is operator or interpolation %d of one expression; an expression may chain at most %d operators and ${} interpolations (counting those of the expressions it is inside). Split it into locals.", MaxOperators+1, MaxOperators)}
}

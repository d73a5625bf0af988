package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp/syntax"
	"strconv"
	"strings"
)

// llama.cpp's grammar and schema parsers trust their input: a repetition
// {5,2} or {0,1000000000} makes the grammar parser loop or exhaust memory,
// and a stray '}' in a schema pattern makes the schema converter loop for
// ever. These checks refuse such input before it reaches them.

const (
	maxRepeat      = 4096  // largest bound of one {m,n} repetition
	maxRepeatTotal = 65536 // sum of all bounds in one grammar
	maxSchemaDepth = 64    // nesting of a JSON schema
)

// checkRepetitions checks every {m}, {m,} and {m,n} of a GBNF grammar,
// skipping string literals, character classes and comments.
func checkRepetitions(g string) error {
	total := 0
	for i := 0; i < len(g); i++ {
		switch g[i] {
		case '"', '[':
			i = skipQuoted(g, i)
		case '#':
			for i < len(g) && g[i] != '\n' {
				i++
			}
		case '{':
			j := strings.IndexByte(g[i:], '}')
			if j < 0 {
				return errors.New("a '{' repetition is not closed")
			}
			lo, hi, err := repetitionBounds(g[i+1 : i+j])
			if err != nil {
				return err
			}
			total += max(lo, hi)
			if total > maxRepeatTotal {
				return fmt.Errorf("the repetitions add up to more than %d", maxRepeatTotal)
			}
			i += j
		}
	}
	return nil
}

// skipQuoted returns the index of the character that closes the string
// literal or character class opening at g[i].
func skipQuoted(g string, i int) int {
	end := byte('"')
	if g[i] == '[' {
		end = ']'
	}
	for i++; i < len(g) && g[i] != end; i++ {
		if g[i] == '\\' {
			i++
		}
	}
	return i
}

// repetitionBounds parses the inside of {m}, {m,}, {,n} or {m,n}; a missing
// upper bound is reported as hi = -1.
func repetitionBounds(body string) (lo, hi int, err error) {
	bad := fmt.Errorf("repetition {%s} is not {m}, {m,} or {m,n} with m ≤ n ≤ %d", body, maxRepeat)
	parse := func(s string, dflt int) (int, bool) {
		s = strings.TrimSpace(s)
		if s == "" {
			return dflt, true
		}
		n, err := strconv.Atoi(s)
		return n, err == nil && n >= 0 && n <= maxRepeat
	}
	a, b, two := strings.Cut(body, ",")
	lo, ok1 := parse(a, 0)
	if !two {
		if strings.TrimSpace(a) == "" {
			return 0, 0, bad
		}
		hi, ok2 := lo, ok1
		if !ok2 {
			return 0, 0, bad
		}
		return lo, hi, nil
	}
	hi, ok2 := parse(b, -1)
	if !ok1 || !ok2 || (hi >= 0 && hi < lo) {
		return 0, 0, bad
	}
	return lo, hi, nil
}

// checkSchema refuses a JSON schema nested too deeply or with a "pattern"
// the schema converter cannot handle.
func checkSchema(schema []byte) error {
	d := json.NewDecoder(strings.NewReader(string(schema)))
	depth := 0
	var last string // the previous string: the key, when tok is a value
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("the JSON schema is not valid JSON: %w", err)
		}
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' || v == '[' {
				depth++
				if depth > maxSchemaDepth {
					return fmt.Errorf("the JSON schema is nested more than %d deep", maxSchemaDepth)
				}
			} else {
				depth--
			}
		case string:
			if last == "pattern" {
				if err := checkPattern(v); err != nil {
					return fmt.Errorf("pattern %q: %w", v, err)
				}
			}
		}
		last, _ = tok.(string)
	}
}

// checkPattern accepts a regular expression only when it parses (as Go's
// regexp would) and every '{' and '}' belongs to a valid repetition.
func checkPattern(p string) error {
	if _, err := syntax.Parse(p, syntax.Perl); err != nil {
		return err
	}
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '[':
			i = skipQuoted(p, i)
		case '}':
			return errors.New("a '}' outside a {m,n} repetition; escape it as \\}")
		case '{':
			j := strings.IndexByte(p[i:], '}')
			if j < 0 {
				return errors.New("a '{' is not closed; escape it as \\{")
			}
			if i == 0 || strings.IndexByte("(|^", p[i-1]) >= 0 {
				return errors.New("a {m,n} repetition repeats nothing")
			}
			if _, _, err := repetitionBounds(p[i+1 : i+j]); err != nil {
				return err
			}
			i += j
		}
	}
	return nil
}

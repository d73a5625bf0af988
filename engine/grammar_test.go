package engine

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
)

// generateText runs req and returns its text and stats.
func generateText(t *testing.T, e *Engine, req Request) (string, Stats) {
	t.Helper()
	var b strings.Builder
	st, err := e.Generate(context.Background(), req, func(tk Token) { b.WriteString(tk.Text) })
	if err != nil {
		t.Fatal(err)
	}
	return b.String(), st
}

// On random weights the output is noise; a grammar still makes it JSON
// that matches the schema.
func TestGrammarConstrainsOutputToSchema(t *testing.T) {
	e := load(t, Options{CtxSize: 512})
	schema := `{"type":"object","properties":{"ok":{"type":"boolean"},"n":{"type":"integer"}},"required":["ok","n"],"additionalProperties":false}`
	g, err := JSONSchemaGrammar([]byte(schema))
	if err != nil {
		t.Fatal(err)
	}
	for seed := uint32(1); seed <= 3; seed++ {
		sp := DefaultSampling()
		sp.Seed = seed
		text, st := generateText(t, e, Request{Prompt: tokens(t, e, "Answer in JSON:", true), MaxTokens: 200, Sampling: sp, Grammar: g})
		if st.StopReason != StopEOS {
			t.Fatalf("seed %d: stopped by %s after %q; the grammar should end the output", seed, st.StopReason, text)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(text), &got); err != nil {
			t.Fatalf("seed %d: output %q is not JSON: %v", seed, text, err)
		}
		_, isBool := got["ok"].(bool)
		n, isNum := got["n"].(float64)
		if len(got) != 2 || !isBool || !isNum || n != math.Trunc(n) {
			t.Fatalf("seed %d: %q does not match the schema", seed, text)
		}
	}
	// Unconstrained, the same model does not write that JSON.
	text, _ := generateText(t, e, Request{Prompt: tokens(t, e, "Answer in JSON:", true), MaxTokens: 30, Sampling: greedy()})
	if json.Valid([]byte(text)) {
		t.Fatalf("without a grammar the random model wrote JSON %q; the test proves nothing", text)
	}
}

// jsonPrefix reports whether text is JSON or the start of some JSON: read
// token by token, it ends in an unexpected EOF rather than a syntax error.
func jsonPrefix(text string) bool {
	d := json.NewDecoder(strings.NewReader(text))
	for {
		_, err := d.Token()
		switch {
		case err == io.EOF:
			return true
		case errors.Is(err, io.ErrUnexpectedEOF):
			return true
		case err != nil:
			return false
		}
	}
}

// Any object may hold a string that never ends, and on random weights most
// do, so an output may stop at max_tokens: it is still the start of a JSON
// object, and one that ended is a whole object.
func TestJSONObjectGrammar(t *testing.T) {
	e := load(t, Options{CtxSize: 512})
	for seed := uint32(1); seed <= 4; seed++ {
		sp := DefaultSampling()
		sp.Seed = seed
		req := Request{Prompt: tokens(t, e, "JSON:", true), MaxTokens: 60, Sampling: sp}
		free, _ := generateText(t, e, req)
		req.Grammar = JSONObjectGrammar()
		text, st := generateText(t, e, req)
		if !strings.HasPrefix(strings.TrimSpace(text), "{") || !jsonPrefix(text) {
			t.Fatalf("seed %d: output %q is not the start of a JSON object", seed, text)
		}
		if jsonPrefix(free) {
			t.Fatalf("seed %d: without the grammar the output %q is JSON too; the test proves nothing", seed, free)
		}
		if st.StopReason == StopEOS {
			var v map[string]any
			if err := json.Unmarshal([]byte(text), &v); err != nil {
				t.Fatalf("seed %d: output %q ended but is not a JSON object: %v", seed, text, err)
			}
		}
	}
}

func TestGrammarErrors(t *testing.T) {
	e := load(t, Options{CtxSize: 128})
	prompt := tokens(t, e, "hi", true)
	for _, g := range []string{`root ::= "a`, `start ::= "a"`, `root ::= [`} {
		if _, err := e.Start(context.Background(), Request{Prompt: prompt, MaxTokens: 4, Sampling: greedy(), Grammar: g}); !errors.Is(err, ErrRequest) || !strings.Contains(err.Error(), "grammar") {
			t.Errorf("grammar %q: %v, want ErrRequest about the grammar", g, err)
		}
	}
	for _, schema := range []string{`{"type":`, `{"type":"nonsense"}`, `{"$ref":"#/nowhere"}`} {
		if _, err := JSONSchemaGrammar([]byte(schema)); !errors.Is(err, ErrRequest) {
			t.Errorf("schema %q: %v, want ErrRequest", schema, err)
		}
	}
	// The engine still serves after refusing them.
	if _, st := generateText(t, e, Request{Prompt: prompt, MaxTokens: 3, Sampling: greedy(), IgnoreEOS: true}); st.Tokens != 3 {
		t.Fatalf("%+v", st)
	}
}

// Schemas and grammars come from API clients; hostile ones must give an
// error, never crash the process.
func FuzzJSONSchemaGrammar(f *testing.F) {
	for _, s := range []string{`{"type":"object"}`, `{"type":"array","items":{"$ref":"#"}}`, `{"enum":[1,"a",null]}`, `{"type":"string","pattern":"^(a|b)*$"}`, `{"anyOf":[{}]}`, `{`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, schema string) {
		if g, err := JSONSchemaGrammar([]byte(schema)); err == nil && g == "" {
			t.Fatal("no error and no grammar")
		}
	})
}

func FuzzGrammar(f *testing.F) {
	e, err := Load(context.Background(), tinyModel(f), Options{CtxSize: 64, Threads: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { e.Close() })
	for _, g := range []string{`root ::= "a"`, `root ::= [a-z]+ ("," root)?`, `root ::= x`, `root ::= ("a" | "b"){2,5}`, `root ::= "\x"`} {
		f.Add(g)
	}
	f.Fuzz(func(t *testing.T, g string) {
		if err := e.checkGrammar(g); err != nil && !errors.Is(err, ErrRequest) {
			t.Fatalf("%q: %v is not ErrRequest", g, err)
		}
	})
}

func TestHostileGrammarsAreRefused(t *testing.T) {
	e := load(t, Options{CtxSize: 64})
	for _, g := range []string{`root ::= ("a" | "b"){25,5}`, `root ::= "a"{0,1000000000}`, `root ::= "a"{x}`, `root ::= "a"{2`} {
		if err := e.checkGrammar(g); !errors.Is(err, ErrRequest) {
			t.Errorf("grammar %q: %v, want ErrRequest", g, err)
		}
	}
	for _, g := range []string{`root ::= "{" [}{] "}" # {oops}`, `root ::= "a"{2,5} "b"{3} "c"{1,}`} {
		if err := e.checkGrammar(g); err != nil {
			t.Errorf("grammar %q: %v", g, err)
		}
	}
	for _, schema := range []string{
		`{"type":"string","pattern":"^(a}b)*$"}`,
		`{"type":"string","pattern":"*a"}`,
		`{"type":"string","pattern":"{3}"}`,
		`{"type":"string","maxLength":1000000000}`,
		strings.Repeat(`{"items":`, 100) + `{}` + strings.Repeat(`}`, 100),
	} {
		if _, err := JSONSchemaGrammar([]byte(schema)); !errors.Is(err, ErrRequest) {
			t.Errorf("schema %.60q: %v, want ErrRequest", schema, err)
		}
	}
	if _, err := JSONSchemaGrammar([]byte(`{"type":"string","pattern":"^[a-z}]{2,8}\\}$","maxLength":20}`)); err != nil {
		t.Errorf("a fine pattern: %v", err)
	}
}

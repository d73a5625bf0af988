package engine

import (
	"fmt"
	"sync"

	"github.com/ollama/ollama/llama"
)

// JSONSchemaGrammar converts a JSON schema into a GBNF grammar for
// Request.Grammar, so that the output is JSON that matches the schema.
func JSONSchemaGrammar(schema []byte) (string, error) {
	if err := checkSchema(schema); err != nil {
		return "", fmt.Errorf("%w: %w", ErrRequest, err)
	}
	g := llama.SchemaToGrammar(schema)
	if len(g) == 0 {
		return "", fmt.Errorf("%w: the JSON schema cannot be turned into a grammar (is it a JSON schema object?)", ErrRequest)
	}
	if err := checkRepetitions(string(g)); err != nil {
		return "", fmt.Errorf("%w: the JSON schema asks for too much: %w", ErrRequest, err)
	}
	return string(g), nil
}

var jsonObject = sync.OnceValue(func() string {
	g, err := JSONSchemaGrammar([]byte(`{"type":"object"}`))
	if err != nil {
		panic("the JSON object schema has no grammar: " + err.Error())
	}
	return g
})

// JSONObjectGrammar is the grammar of any JSON object (OpenAI's
// response_format {"type": "json_object"}).
func JSONObjectGrammar() string { return jsonObject() }

// checkGrammar refuses a GBNF grammar llama.cpp cannot parse, with
// llama.cpp's reason. Checking first matters: a sampler built from a bad
// grammar crashes on first use.
func (e *Engine) checkGrammar(grammar string) error {
	if grammar == "" {
		return nil
	}
	if err := checkRepetitions(grammar); err != nil {
		return fmt.Errorf("%w: the grammar is refused: %w", ErrRequest, err)
	}
	var ok bool
	lines := captureErrors(func() { ok = grammarParses(e.model, grammar) })
	if ok {
		return nil
	}
	cause := logCause(lines)
	if cause == "" {
		cause = "llama.cpp could not parse it"
	}
	return fmt.Errorf("%w: the grammar is not valid GBNF with a root rule: %s", ErrRequest, cause)
}

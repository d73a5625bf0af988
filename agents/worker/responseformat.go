package worker

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

	"github.com/rbee-dev/rbee/engine"
)

// Bounds on a response_format JSON schema: llama.cpp turns it into a
// grammar recursively, so a deeply nested one must not reach it.
const (
	maxSchemaBytes = 64 << 10
	maxSchemaDepth = 32
)

// responseFormat is OpenAI's response_format: "text" (the default),
// "json_object" (any JSON object) or "json_schema" (JSON matching a schema).
// The JSON kinds constrain sampling with a llama.cpp grammar, so the output
// parses whatever the model's weights are.
type responseFormat struct {
	Type       string `json:"type"`
	JSONSchema *struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Schema      json.RawMessage `json:"schema"`
		Strict      *bool           `json:"strict"`
	} `json:"json_schema"`
}

// grammar is the GBNF grammar that enforces f; "" for plain text.
func (f *responseFormat) grammar() (string, error) {
	if f == nil {
		return "", nil
	}
	switch f.Type {
	case "", "text":
		if f.JSONSchema != nil {
			return "", fieldError("response_format.json_schema", `is only allowed with "type": "json_schema"`)
		}
		return "", nil
	case "json_object":
		if f.JSONSchema != nil {
			return "", fieldError("response_format.json_schema", `is only allowed with "type": "json_schema"`)
		}
		return engine.JSONObjectGrammar(), nil
	case "json_schema":
		if f.JSONSchema == nil || len(f.JSONSchema.Schema) == 0 || string(f.JSONSchema.Schema) == "null" {
			return "", fieldError("response_format.json_schema.schema", `is required with "type": "json_schema": give the JSON Schema the reply must match`)
		}
		return schemaGrammar(f.JSONSchema.Schema)
	default:
		return "", fieldError("response_format.type", `must be "text", "json_object" or "json_schema", got %q`, f.Type)
	}
}

// schemaGrammar checks a JSON schema's shape and size and converts it.
func schemaGrammar(schema json.RawMessage) (string, error) {
	const field = "response_format.json_schema.schema"
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(schema, &obj); err != nil {
		return "", fieldError(field, "must be a JSON Schema object")
	}
	if len(schema) > maxSchemaBytes {
		return "", fieldError(field, "is %d bytes; at most %d are accepted", len(schema), maxSchemaBytes)
	}
	if depth := jsonDepth(schema); depth > maxSchemaDepth {
		return "", fieldError(field, "nests %d levels deep; at most %d are accepted", depth, maxSchemaDepth)
	}
	g, err := engine.JSONSchemaGrammar(schema)
	if err != nil {
		return "", fieldError(field, "%v", err)
	}
	return g, nil
}

// jsonDepth is how deeply objects and arrays nest in valid JSON.
func jsonDepth(raw []byte) int {
	dec := json.NewDecoder(bytes.NewReader(raw))
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) || err != nil {
			return deepest
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			deepest = max(deepest, depth)
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}

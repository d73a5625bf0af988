package features

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cucumber/godog"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
)

// openAIReply is the last answer the official OpenAI client got.
type openAIReply struct {
	text       string
	finish     string
	usage      openai.CompletionUsage
	models     []openai.Model
	embeddings [][]float64
	err        error
}

// sharedModelPath is a real GGUF file from the shared test models
// ($RBEE_TEST_MODELS, else shared/models beside the repository).
func sharedModelPath(name string) (string, error) {
	dir := os.Getenv("RBEE_TEST_MODELS")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "models")
	}
	p, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("shared test model %s is missing (set RBEE_TEST_MODELS to the folder of the shared test models): %w", name, err)
	}
	return p, nil
}

// client is the official OpenAI client pointed at the scenario's worker.
func (ww *workerWorld) client() *openai.Client {
	c := openai.NewClient(option.WithBaseURL(ww.url+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0),
		option.WithRequestTimeout(2*time.Minute))
	return &c
}

func registerWorkerOpenAISteps(sc *godog.ScenarioContext, ww *workerWorld) {
	w := ww.w
	var reply openAIReply
	ctx := context.Background()
	sc.Step(`^a ready worker on the shared model "([^"]*)"(?: with "([^"]*)")?$`, func(name, args string) error {
		src, err := sharedModelPath(name)
		if err != nil {
			return err
		}
		if err := os.Symlink(src, filepath.Join(w.dir, name)); err != nil {
			return err
		}
		return ww.start(name, args, true)
	})
	sc.Step(`^the shared model "([^"]*)"$`, func(name string) error {
		src, err := sharedModelPath(name)
		if err != nil {
			return err
		}
		return os.Symlink(src, filepath.Join(w.dir, name))
	})

	sc.Step(`^the OpenAI client lists the models$`, func() error {
		page, err := ww.client().Models.List(ctx)
		if err != nil {
			return err
		}
		reply = openAIReply{models: page.Data}
		return nil
	})
	sc.Step(`^the only model listed is "([^"]*)" with context length (\d+) and the sha256 of "([^"]*)"$`, func(id string, ctxLen int, file string) error {
		if len(reply.models) != 1 {
			return fmt.Errorf("%d models listed, want 1: %+v", len(reply.models), reply.models)
		}
		m := reply.models[0]
		want, err := fileSHA256(filepath.Join(w.dir, file))
		if err != nil {
			return err
		}
		extra := m.JSON.ExtraFields
		if m.ID != id || m.Object != "model" || extra["context_length"].Raw() != fmt.Sprint(ctxLen) {
			return fmt.Errorf("model %s (object %s, context_length %s), want %s with context_length %d; %s", m.ID, m.Object, extra["context_length"].Raw(), id, ctxLen, m.RawJSON())
		}
		// The file is hashed in the background; poll until the digest shows.
		return eventually(30*time.Second, func() error {
			page, err := ww.client().Models.List(ctx)
			if err != nil {
				return err
			}
			if got := page.Data[0].JSON.ExtraFields["sha256"].Raw(); got != `"`+want+`"` {
				return fmt.Errorf("sha256 %s, want %s", got, want)
			}
			return nil
		})
	})

	chat := func(prompt string, max int) openai.ChatCompletionNewParams {
		return openai.ChatCompletionNewParams{
			Model:     "any",
			Messages:  []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage(prompt)},
			MaxTokens: openai.Int(int64(max)),
			Seed:      openai.Int(1),
		}
	}
	sc.Step(`^the OpenAI client asks for a chat completion of "([^"]*)" with (\d+) max tokens(, ignoring EOS)?(, without the prompt cache)?(, and every field that does not change the output)?$`,
		func(prompt string, max int, ignoreEOS, noCache, ignored string) error {
			p := chat(prompt, max)
			var opts []option.RequestOption
			if ignoreEOS != "" {
				opts = append(opts, option.WithJSONSet("ignore_eos", true))
			}
			if noCache != "" {
				opts = append(opts, option.WithJSONSet("cache_prompt", false))
			}
			if ignored != "" {
				p.User = openai.String("user-1")
				p.Metadata = shared.Metadata{"team": "search"}
				p.Store = openai.Bool(false)
				p.ServiceTier = openai.ChatCompletionNewParamsServiceTierAuto
				p.ParallelToolCalls = openai.Bool(false)
				p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			}
			res, err := ww.client().Chat.Completions.New(ctx, p, opts...)
			reply = openAIReply{err: err}
			if err != nil {
				return err
			}
			if len(res.Choices) != 1 || res.Object != "chat.completion" || res.Choices[0].Message.Role != "assistant" {
				return fmt.Errorf("unexpected chat completion: %s", res.RawJSON())
			}
			reply.text, reply.finish, reply.usage = res.Choices[0].Message.Content, res.Choices[0].FinishReason, res.Usage
			return nil
		})
	sc.Step(`^the OpenAI client streams a chat completion of "([^"]*)" with (\d+) max tokens, ignoring EOS$`, func(prompt string, max int) error {
		p := chat(prompt, max)
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		stream := ww.client().Chat.Completions.NewStreaming(ctx, p, option.WithJSONSet("ignore_eos", true))
		defer stream.Close()
		var acc openai.ChatCompletionAccumulator
		for stream.Next() {
			acc.AddChunk(stream.Current())
		}
		if err := stream.Err(); err != nil {
			return err
		}
		if len(acc.Choices) != 1 {
			return fmt.Errorf("%d choices streamed", len(acc.Choices))
		}
		reply = openAIReply{text: acc.Choices[0].Message.Content, finish: acc.Choices[0].FinishReason, usage: acc.Usage}
		return nil
	})
	sc.Step(`^the OpenAI client asks for a (streamed )?completion of "([^"]*)" with (\d+) max tokens at temperature 0$`, func(streamed, prompt string, max int) error {
		p := openai.CompletionNewParams{
			Model:       "any",
			Prompt:      openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt)},
			MaxTokens:   openai.Int(int64(max)),
			Temperature: openai.Float(0),
		}
		eos := option.WithJSONSet("ignore_eos", true)
		if streamed == "" {
			res, err := ww.client().Completions.New(ctx, p, eos)
			if err != nil {
				return err
			}
			reply = openAIReply{text: res.Choices[0].Text, finish: string(res.Choices[0].FinishReason), usage: res.Usage}
			w.vars["PLAIN_COMPLETION"] = reply.text
			return nil
		}
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		stream := ww.client().Completions.NewStreaming(ctx, p, eos)
		defer stream.Close()
		reply = openAIReply{}
		var b strings.Builder
		for stream.Next() {
			c := stream.Current()
			for _, ch := range c.Choices {
				b.WriteString(ch.Text)
				if ch.FinishReason != "" {
					reply.finish = string(ch.FinishReason)
				}
			}
			if c.Usage.TotalTokens > 0 {
				reply.usage = c.Usage
			}
		}
		reply.text = b.String()
		return stream.Err()
	})
	sc.Step(`^the OpenAI reply has (\d+) completion tokens and finish reason "([^"]*)"$`, func(n int, finish string) error {
		u := reply.usage
		if int(u.CompletionTokens) != n || reply.finish != finish || u.TotalTokens != u.PromptTokens+u.CompletionTokens || u.PromptTokens == 0 {
			return fmt.Errorf("usage %+v, finish %q; want %d completion tokens, finish %q", u, reply.finish, n, finish)
		}
		return nil
	})
	sc.Step(`^the OpenAI reply's text is "([^"]*)"$`, func(want string) error {
		if reply.text != w.expand(want) {
			return fmt.Errorf("text %q, want %q", reply.text, w.expand(want))
		}
		return nil
	})
	sc.Step(`^the OpenAI reply reports (no|some) cached prompt tokens$`, func(how string) error {
		n := reply.usage.PromptTokensDetails.CachedTokens
		if (how == "no") != (n == 0) || n >= reply.usage.PromptTokens {
			return fmt.Errorf("%d of %d prompt tokens cached, want %s", n, reply.usage.PromptTokens, how)
		}
		return nil
	})

	sc.Step(`^the OpenAI client asks for a chat completion of "([^"]*)" as JSON matching:$`, func(prompt string, schema *godog.DocString) error {
		var s map[string]any
		if err := json.Unmarshal([]byte(schema.Content), &s); err != nil {
			return err
		}
		w.vars["SCHEMA"] = schema.Content
		p := chat(prompt, 200)
		p.ResponseFormat = openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
			JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{Name: "reply", Schema: s, Strict: openai.Bool(true)},
		}}
		return ww.chatJSON(ctx, p, &reply)
	})
	sc.Step(`^the OpenAI client asks for a chat completion of "([^"]*)" as a JSON object$`, func(prompt string) error {
		// Any object: a random model rarely closes it, so max_tokens may cut it.
		p := chat(prompt, 60)
		p.ResponseFormat = openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONObject: &shared.ResponseFormatJSONObjectParam{}}
		res, err := ww.client().Chat.Completions.New(ctx, p)
		if err != nil {
			return err
		}
		reply = openAIReply{text: res.Choices[0].Message.Content, finish: res.Choices[0].FinishReason, usage: res.Usage}
		return nil
	})
	sc.Step(`^the reply is a JSON object, or its start when max_tokens cut it$`, func() error {
		if reply.finish == "stop" {
			var v map[string]any
			if err := json.Unmarshal([]byte(reply.text), &v); err != nil {
				return fmt.Errorf("reply %q is not a JSON object: %v", reply.text, err)
			}
			return nil
		}
		return jsonObjectPrefix(reply.text)
	})
	sc.Step(`^the reply is a JSON object( matching the schema)?$`, func(matching string) error {
		var v any
		if err := json.Unmarshal([]byte(reply.text), &v); err != nil {
			return fmt.Errorf("reply %q is not JSON: %v", reply.text, err)
		}
		if _, ok := v.(map[string]any); !ok {
			return fmt.Errorf("reply %q is not a JSON object", reply.text)
		}
		if matching == "" {
			return nil
		}
		var schema map[string]any
		_ = json.Unmarshal([]byte(w.vars["SCHEMA"]), &schema)
		if err := matchSchema("reply", v, schema); err != nil {
			return fmt.Errorf("reply %q: %w", reply.text, err)
		}
		return nil
	})

	sc.Step(`^the OpenAI client's chat completion with (tools|n = 2|logprobs) is refused with 400 naming "([^"]*)"$`, func(what, field string) error {
		p := chat("hi", 4)
		switch what {
		case "tools":
			p.Tools = []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{Name: "lookup"})}
		case "n = 2":
			p.N = openai.Int(2)
		case "logprobs":
			p.Logprobs = openai.Bool(true)
		}
		_, err := ww.client().Chat.Completions.New(ctx, p)
		return refusedNaming(err, 400, field)
	})

	sc.Step(`^the OpenAI client embeds (\d+) (texts|token lists) as (float|base64)$`, func(n int, kind, format string) error {
		p := openai.EmbeddingNewParams{Model: "any", EncodingFormat: openai.EmbeddingNewParamsEncodingFormat(format)}
		for i := range n {
			if kind == "texts" {
				p.Input.OfArrayOfStrings = append(p.Input.OfArrayOfStrings, fmt.Sprintf("text number %d", i))
			} else {
				p.Input.OfArrayOfTokenArrays = append(p.Input.OfArrayOfTokenArrays, []int64{1, int64(10 + i), int64(20 + i)})
			}
		}
		res, err := ww.client().Embeddings.New(ctx, p)
		reply = openAIReply{err: err}
		if err != nil {
			return nil // a later step says whether it should have failed
		}
		for i, e := range res.Data {
			if int(e.Index) != i {
				return fmt.Errorf("embedding %d has index %d", i, e.Index)
			}
			reply.embeddings = append(reply.embeddings, e.Embedding)
		}
		reply.usage.PromptTokens = res.Usage.PromptTokens
		return nil
	})
	sc.Step(`^the OpenAI client embeds "([^"]*)"$`, func(text string) error {
		p := openai.EmbeddingNewParams{Model: "any", Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String(text)}}
		res, err := ww.client().Embeddings.New(ctx, p)
		reply = openAIReply{err: err}
		if err == nil {
			for _, e := range res.Data {
				reply.embeddings = append(reply.embeddings, e.Embedding)
			}
		}
		return nil
	})
	sc.Step(`^(\d+) embeddings of the same non-zero length come back$`, func(n int) error {
		if reply.err != nil {
			return describe(reply.err)
		}
		if len(reply.embeddings) != n {
			return fmt.Errorf("%d embeddings, want %d", len(reply.embeddings), n)
		}
		for i, e := range reply.embeddings {
			if len(e) == 0 || len(e) != len(reply.embeddings[0]) {
				return fmt.Errorf("embedding %d has %d values, the first %d", i, len(e), len(reply.embeddings[0]))
			}
			var ss float64
			for _, f := range e {
				if math.IsNaN(f) || math.IsInf(f, 0) {
					return fmt.Errorf("embedding %d holds %v", i, f)
				}
				ss += f * f
			}
			if math.Abs(math.Sqrt(ss)-1) > 1e-3 {
				return fmt.Errorf("embedding %d has length %v, want 1 (normalised as OpenAI's are)", i, math.Sqrt(ss))
			}
		}
		return nil
	})
	sc.Step(`^I remember the embeddings as "([^"]*)"$`, func(name string) error {
		b, _ := json.Marshal(reply.embeddings)
		w.vars[name] = string(b)
		return nil
	})
	sc.Step(`^the embeddings equal "([^"]*)"$`, func(name string) error {
		var want [][]float64
		if err := json.Unmarshal([]byte(w.vars[name]), &want); err != nil {
			return err
		}
		for i := range want {
			for j := range want[i] {
				if math.Abs(float32Round(reply.embeddings[i][j])-float32Round(want[i][j])) > 0 {
					return fmt.Errorf("embedding %d value %d: %v, want %v", i, j, reply.embeddings[i][j], want[i][j])
				}
			}
		}
		return nil
	})
	sc.Step(`^the OpenAI request was refused with (\d+) saying "([^"]*)"$`, func(status int, text string) error {
		var e *openai.Error
		if !errors.As(reply.err, &e) {
			return fmt.Errorf("error %v, want an OpenAI API error", reply.err)
		}
		if e.StatusCode != status || !strings.Contains(e.Message, text) {
			return fmt.Errorf("status %d message %q, want %d saying %q", e.StatusCode, e.Message, status, text)
		}
		return nil
	})

	sc.Step(`^the end event reports (no|some) cached prompt tokens$`, func(how string) error {
		ev, err := findEvent(ww.last.events, "end")
		if err != nil {
			return err
		}
		var end struct {
			PromptTokens int  `json:"prompt_tokens"`
			CachedTokens *int `json:"cached_tokens"`
		}
		if err := json.Unmarshal(ev, &end); err != nil || end.CachedTokens == nil {
			return fmt.Errorf("end event %s has no cached_tokens (%v)", ev, err)
		}
		if n := *end.CachedTokens; (how == "no") != (n == 0) || n >= end.PromptTokens {
			return fmt.Errorf("%d of %d prompt tokens cached, want %s: %s", n, end.PromptTokens, how, ev)
		}
		return nil
	})
	sc.Step(`^the stream "([^"]*)" runs to its end with "([^"]*)" "([^"]*)"$`, func(name, key, want string) error {
		// Unlike "ends with", the stream is not cancelled: it may need all
		// its tokens, so the bound is generous.
		s, ok := ww.streams[name]
		if !ok {
			return fmt.Errorf("no stream %q", name)
		}
		select {
		case <-s.done:
		case <-time.After(3 * time.Minute):
			return fmt.Errorf("stream %q did not end within 3 minutes (%d events)", name, len(s.snapshot()))
		}
		ev, err := findEvent(s.snapshot(), "end")
		if err != nil {
			return fmt.Errorf("stream %q: %w (err %v)", name, err, s.err)
		}
		return eventField(ev, key, want)
	})
	sc.Step(`^the worker's metrics pass "promtool check metrics"$`, func() error {
		promtool, err := exec.LookPath("promtool")
		if err != nil {
			return errors.New("promtool is not installed: run scripts/deps.sh (Debian package prometheus)")
		}
		if err := ww.do("GET", "/metrics", nil, ww.token); err != nil {
			return err
		}
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(string(ww.last.body))
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			return fmt.Errorf("promtool check metrics: %v\n%s", err, out)
		}
		return nil
	})
	sc.Step(`^stderr ends with the one line starting with "([^"]*)"$`, func(prefix string) error {
		lines := strings.Split(strings.TrimRight(w.stderr, "\n"), "\n")
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				n++
			}
		}
		if n != 1 || !strings.HasPrefix(lines[len(lines)-1], prefix) {
			return fmt.Errorf("stderr has %d lines starting with %q, want one, the last:\n%s", n, prefix, tail(w.stderr, 20))
		}
		return nil
	})
	sc.Step(`^the output of the worker contains "([^"]*)"$`, func(s string) error {
		p, err := w.proc("worker")
		if err != nil {
			return err
		}
		if !strings.Contains(p.out.String(), s) {
			return fmt.Errorf("the worker's output lacks %q:\n%s", s, tail(p.out.String(), 20))
		}
		return nil
	})
}

// chatJSON runs a chat request that asks for JSON and keeps the reply.
func (ww *workerWorld) chatJSON(ctx context.Context, p openai.ChatCompletionNewParams, reply *openAIReply) error {
	res, err := ww.client().Chat.Completions.New(ctx, p)
	*reply = openAIReply{err: err}
	if err != nil {
		return err
	}
	reply.text, reply.finish, reply.usage = res.Choices[0].Message.Content, res.Choices[0].FinishReason, res.Usage
	if reply.finish != "stop" {
		return fmt.Errorf("finish reason %q after %d tokens, want stop (the grammar ends the reply): %q", reply.finish, reply.usage.CompletionTokens, reply.text)
	}
	return nil
}

// describe adds the body of an OpenAI API error, which its Error() leaves out.
func describe(err error) error {
	var e *openai.Error
	if errors.As(err, &e) {
		return fmt.Errorf("%w: %s", err, e.RawJSON())
	}
	return err
}

// jsonObjectPrefix checks that text is the start of a JSON object: every
// token up to where it stops is valid JSON.
func jsonObjectPrefix(text string) error {
	dec := json.NewDecoder(strings.NewReader(text))
	for i := 0; ; i++ {
		tok, err := dec.Token()
		if i == 0 && err == nil && tok != json.Delim('{') {
			return fmt.Errorf("reply %q does not start a JSON object", text)
		}
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return nil
		case err != nil:
			return fmt.Errorf("reply %q is not the start of a JSON object: %v", text, err)
		}
	}
}

// refusedNaming checks that err is an OpenAI API error with status that
// names field in its param or message.
func refusedNaming(err error, status int, field string) error {
	var e *openai.Error
	if !errors.As(err, &e) {
		return fmt.Errorf("error %v, want an OpenAI API error", err)
	}
	if e.StatusCode != status || e.Param != field && !strings.Contains(e.Message, field) {
		return fmt.Errorf("status %d param %q message %q, want %d naming %q", e.StatusCode, e.Param, e.Message, status, field)
	}
	return nil
}

// matchSchema checks v against the small part of JSON Schema the scenarios
// use: type, properties, required, enum, items, additionalProperties false.
func matchSchema(at string, v any, schema map[string]any) error {
	if enum, ok := schema["enum"].([]any); ok {
		for _, e := range enum {
			if fmt.Sprint(e) == fmt.Sprint(v) {
				return nil
			}
		}
		return fmt.Errorf("%s = %v is not one of %v", at, v, enum)
	}
	switch schema["type"] {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s is not an object", at)
		}
		props, _ := schema["properties"].(map[string]any)
		req, _ := schema["required"].([]any)
		for _, r := range req {
			if _, ok := obj[r.(string)]; !ok {
				return fmt.Errorf("%s lacks the required %q", at, r)
			}
		}
		for k, val := range obj {
			sub, ok := props[k].(map[string]any)
			if !ok {
				if schema["additionalProperties"] == false {
					return fmt.Errorf("%s has the extra property %q", at, k)
				}
				continue
			}
			if err := matchSchema(at+"."+k, val, sub); err != nil {
				return err
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s is not an array", at)
		}
		items, _ := schema["items"].(map[string]any)
		for i, x := range arr {
			if err := matchSchema(fmt.Sprintf("%s[%d]", at, i), x, items); err != nil {
				return err
			}
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s = %v is not a boolean", at, v)
		}
	case "integer":
		if f, ok := v.(float64); !ok || f != math.Trunc(f) {
			return fmt.Errorf("%s = %v is not an integer", at, v)
		}
	case "string":
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%s = %v is not a string", at, v)
		}
	}
	return nil
}

// float32Round is f as the float32 the worker computed.
func float32Round(f float64) float64 { return float64(float32(f)) }

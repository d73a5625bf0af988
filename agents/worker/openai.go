package worker

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/engine"
)

// The OpenAI-compatible endpoints: POST /v1/completions and
// POST /v1/chat/completions, streaming (SSE chunks ending in data: [DONE])
// and not. Fields that do not change the output (user, metadata, store,
// service_tier, stream_options, parallel_tool_calls) are accepted and
// ignored; fields the worker cannot honour (n > 1, logprobs, tools, ...) are
// refused with a 400 that names them.

// openAIParams are the generation fields both endpoints accept.
type openAIParams struct {
	Model            string          `json:"model"`
	MaxTokens        *int            `json:"max_tokens"`
	Temperature      *float64        `json:"temperature"`
	TopP             *float64        `json:"top_p"`
	TopK             *int            `json:"top_k"`
	MinP             *float64        `json:"min_p"`
	RepeatPenalty    *float64        `json:"repeat_penalty"`
	PresencePenalty  *float64        `json:"presence_penalty"`
	FrequencyPenalty *float64        `json:"frequency_penalty"`
	Seed             *int64          `json:"seed"`
	Stop             json.RawMessage `json:"stop"`
	Stream           bool            `json:"stream"`
	StreamOptions    *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	N              *int            `json:"n"`
	ResponseFormat *responseFormat `json:"response_format"`
	CachePrompt    *bool           `json:"cache_prompt"` // llama.cpp server extension
	IgnoreEOS      bool            `json:"ignore_eos"`   // llama.cpp server extension
	ignoredFields
}

// ignoredFields are OpenAI fields that do not change the output.
type ignoredFields struct {
	User              string          `json:"user"`
	Metadata          json.RawMessage `json:"metadata"`
	Store             *bool           `json:"store"`
	ServiceTier       string          `json:"service_tier"`
	ParallelToolCalls *bool           `json:"parallel_tool_calls"`
}

type completionRequest struct {
	openAIParams
	Prompt json.RawMessage `json:"prompt"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
	Name    string          `json:"name,omitempty"`
}

type chatRequest struct {
	openAIParams
	Messages            []chatMessage `json:"messages"`
	MaxCompletionTokens *int          `json:"max_completion_tokens"`
}

// stringOrList decodes a JSON string or array of strings; null gives nil.
func stringOrList(field string, raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fieldError(field, "must be a string or an array of strings")
	}
	return list, nil
}

// gen validates the shared fields against lim.
func (p *openAIParams) gen(lim limits) (genParams, error) {
	if p.N != nil && *p.N != 1 {
		return genParams{}, fieldError("n", "only n = 1 is supported, got %d", *p.N)
	}
	stop, err := stringOrList("stop", p.Stop)
	if err != nil {
		return genParams{}, err
	}
	g := genParams{
		MaxTokens: p.MaxTokens, Temperature: p.Temperature, TopP: p.TopP, TopK: p.TopK, MinP: p.MinP,
		RepeatPenalty: p.RepeatPenalty, PresencePenalty: p.PresencePenalty, FrequencyPenalty: p.FrequencyPenalty,
		Seed: p.Seed, Stop: stop, IgnoreEOS: p.IgnoreEOS,
		NoPromptCache: p.CachePrompt != nil && !*p.CachePrompt,
	}
	if err := g.validate(lim); err != nil {
		return genParams{}, err
	}
	g.Grammar, err = p.ResponseFormat.grammar()
	return g, err
}

// parseCompletion decodes and validates a /v1/completions body; it needs no
// model, only its limits.
func parseCompletion(w http.ResponseWriter, r *http.Request, lim limits) (completionRequest, string, genParams, error) {
	var in completionRequest
	if err := decodeBody(w, r, &in); err != nil {
		return in, "", genParams{}, err
	}
	prompts, err := stringOrList("prompt", in.Prompt)
	if err != nil || len(prompts) != 1 {
		return in, "", genParams{}, fieldError("prompt", "must be one non-empty string (or an array holding exactly one)")
	}
	if err := checkPrompt("prompt", prompts[0]); err != nil {
		return in, "", genParams{}, err
	}
	p, err := in.gen(lim)
	return in, prompts[0], p, err
}

// handleCompletions is POST /v1/completions.
func (s *Server) handleCompletions(w http.ResponseWriter, r *http.Request) {
	const endpoint = "completions"
	eng, err := s.engine()
	if err != nil {
		s.writeError(w, endpoint, err)
		return
	}
	in, prompt, p, err := parseCompletion(w, r, limitsOf(eng))
	if err != nil {
		s.writeError(w, endpoint, err)
		return
	}
	req, err := s.request(eng, prompt, p, nil)
	if err != nil {
		s.writeError(w, endpoint, err)
		return
	}
	s.serveOpenAI(w, r, eng, endpoint, false, in.Model, req, in.Stream)
}

// parseChat decodes and validates a /v1/chat/completions body; it needs no
// model, only its limits.
func parseChat(w http.ResponseWriter, r *http.Request, lim limits) (chatRequest, []engine.Message, genParams, error) {
	var in chatRequest
	if err := decodeBody(w, r, &in); err != nil {
		return in, nil, genParams{}, err
	}
	if len(in.Messages) == 0 {
		return in, nil, genParams{}, fieldError("messages", "must hold at least one message")
	}
	msgs := make([]engine.Message, 0, len(in.Messages))
	for i, m := range in.Messages {
		field := "messages[" + strconv.Itoa(i) + "]"
		role := m.Role
		switch role {
		case "developer":
			role = "system"
		case "system", "user", "assistant":
		default:
			return in, nil, genParams{}, fieldError(field+".role", "must be system, developer, user or assistant, got %q", m.Role)
		}
		content, err := messageText(field+".content", m.Content)
		if err != nil {
			return in, nil, genParams{}, err
		}
		if strings.IndexByte(content, 0) >= 0 {
			return in, nil, genParams{}, fieldError(field+".content", "must not contain NUL characters")
		}
		msgs = append(msgs, engine.Message{Role: role, Content: content})
	}
	if in.MaxCompletionTokens != nil && in.MaxTokens == nil {
		in.MaxTokens = in.MaxCompletionTokens
	}
	p, err := in.gen(lim)
	return in, msgs, p, err
}

// handleChatCompletions is POST /v1/chat/completions.
func (s *Server) handleChatCompletions(w http.ResponseWriter, r *http.Request) {
	const endpoint = "chat_completions"
	eng, err := s.engine()
	if err != nil {
		s.writeError(w, endpoint, err)
		return
	}
	in, msgs, p, err := parseChat(w, r, limitsOf(eng))
	if err != nil {
		s.writeError(w, endpoint, err)
		return
	}
	prompt, stops := eng.RenderChat(msgs)
	req, err := s.request(eng, prompt, p, stops)
	if err != nil {
		s.writeError(w, endpoint, err)
		return
	}
	s.serveOpenAI(w, r, eng, endpoint, true, in.Model, req, in.Stream)
}

// messageText accepts a string or an array of {"type":"text","text":...} parts.
func messageText(field string, raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", fieldError(field, "must be a string or an array of text parts")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return "", fieldError(field, "only text parts are supported, got %q", p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

func finishReason(r engine.StopReason) string {
	switch r {
	case engine.StopMaxTokens, engine.StopContext:
		return "length"
	default:
		return "stop"
	}
}

type usage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"` // prompt tokens reused from the slot's cache
	} `json:"prompt_tokens_details"`
}

func usageOf(st engine.Stats) usage {
	u := usage{PromptTokens: st.PromptTokens, CompletionTokens: st.Tokens, TotalTokens: st.PromptTokens + st.Tokens}
	u.PromptTokensDetails.CachedTokens = st.CachedTokens
	return u
}

// serveOpenAI runs req and answers in the OpenAI shape of the endpoint.
func (s *Server) serveOpenAI(w http.ResponseWriter, r *http.Request, eng *engine.Engine, endpoint string, chat bool, model string, req engine.Request, stream bool) {
	if model == "" {
		model = modelName(s.cfg.ModelPath)
	}
	id := newJobID()
	object := "text_completion"
	if chat {
		id = "chatcmpl-" + strings.TrimPrefix(id, "job-")
		object = "chat.completion"
	} else {
		id = "cmpl-" + strings.TrimPrefix(id, "job-")
	}
	j, err := s.startJob(r, eng, id, req)
	if err != nil {
		s.writeError(w, endpoint, err)
		return
	}
	w.Header().Set(workerapi.HeaderJobID, id)
	created := time.Now().Unix()
	if !stream {
		var text strings.Builder
		for tok := range j.stream.C {
			text.WriteString(tok.Text)
		}
		st := s.end(endpoint, j)
		if err := j.stream.Err(); err != nil {
			s.writeError(w, endpoint, err)
			return
		}
		choice := map[string]any{"index": 0, "finish_reason": finishReason(st.StopReason)}
		if chat {
			choice["message"] = map[string]string{"role": "assistant", "content": text.String()}
		} else {
			choice["text"] = text.String()
			choice["logprobs"] = nil
		}
		api.WriteJSON(w, http.StatusOK, map[string]any{
			"id": id, "object": object, "created": created, "model": model,
			"choices": []any{choice}, "usage": usageOf(st),
		})
		return
	}

	head, _ := json.Marshal(map[string]any{"id": id, "object": object + chunkSuffix(chat), "created": created, "model": model})
	prefix := string(head[:len(head)-1]) // the object without its closing brace
	var tokPrefix, tokSuffix string
	out := newSSE(w)
	if chat {
		out.raw(prefix+`,"choices":[{"index":0,"delta":{"role":"assistant","content":`, "", `},"finish_reason":null}]}`)
		tokPrefix, tokSuffix = prefix+`,"choices":[{"index":0,"delta":{"content":`, `},"finish_reason":null}]}`
	} else {
		tokPrefix, tokSuffix = prefix+`,"choices":[{"index":0,"text":`, `,"logprobs":null,"finish_reason":null}]}`
	}
	for tok := range j.stream.C {
		if tok.Text == "" {
			continue
		}
		if !out.raw(tokPrefix, tok.Text, tokSuffix) {
			j.cancel()
		}
	}
	st := s.end(endpoint, j)
	if err := j.stream.Err(); err != nil {
		out.json(map[string]any{"error": map[string]any{"code": "DECODE_FAILED", "message": err.Error()}})
		out.done()
		return
	}
	u, _ := json.Marshal(usageOf(st))
	reason := strconv.Quote(finishReason(st.StopReason))
	if chat {
		out.write([]byte("data: " + prefix + `,"choices":[{"index":0,"delta":{},"finish_reason":` + reason + `}],"usage":` + string(u) + "}\n\n"))
	} else {
		out.write([]byte("data: " + prefix + `,"choices":[{"index":0,"text":"","logprobs":null,"finish_reason":` + reason + `}],"usage":` + string(u) + "}\n\n"))
	}
	out.done()
}

func chunkSuffix(chat bool) string {
	if chat {
		return ".chunk"
	}
	return ""
}

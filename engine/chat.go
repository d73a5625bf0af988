package engine

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/ollama/ollama/llama"
)

// Message is one turn of a chat.
type Message struct {
	Role    string // system, user or assistant
	Content string
}

// DefaultChatStop ends a reply rendered with the default template.
const DefaultChatStop = "<|im_end|>"

// The chat template names Info shows when the engine renders ChatML itself.
const (
	chatMLNoTemplate   = "chatml (the model has no chat template)"
	chatMLUnrecognised = "chatml (fallback: the model's template was not recognised)"
)

// RenderChat turns messages into a prompt that asks for the assistant's next
// reply. It uses the built-in template named by Options.ChatTemplate, else
// the model's tokenizer.chat_template when llama.cpp recognises it, else
// (no template, or an unknown one) the default ChatML layout:
//
//	<|im_start|>system
//	You are helpful.<|im_end|>
//	<|im_start|>user
//	Hi<|im_end|>
//	<|im_start|>assistant
//
// stops lists strings that end the reply for the template used.
func (e *Engine) RenderChat(msgs []Message) (prompt string, stops []string) {
	if e.template != "" {
		if out, ok := applyTemplate(e.template, msgs, true); ok {
			return out, nil
		}
	}
	return DefaultChatML(msgs), []string{DefaultChatStop}
}

// DefaultChatML renders messages in the ChatML layout used when a model has
// no chat template of its own.
func DefaultChatML(msgs []Message) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString("<|im_start|>")
		b.WriteString(m.Role)
		b.WriteString("\n")
		b.WriteString(m.Content)
		b.WriteString("<|im_end|>\n")
	}
	b.WriteString("<|im_start|>assistant\n")
	return b.String()
}

// ChatTemplates lists the built-in chat template names Options.ChatTemplate
// accepts.
func ChatTemplates() []string { return builtinTemplates() }

// checkTemplateName refuses a chat template name llama.cpp does not know.
func checkTemplateName(name string) error {
	if name == "" || slices.Contains(builtinTemplates(), name) {
		return nil
	}
	return fmt.Errorf("chat template %q is not a built-in template; use one of %s, or leave it empty for the model's own",
		name, strings.Join(builtinTemplates(), ", "))
}

// probeChat is the conversation rendered to tell which built-in layout a
// model's template is.
var probeChat = []Message{
	{Role: "system", Content: "S"},
	{Role: "user", Content: "U1"},
	{Role: "assistant", Content: "A1"},
	{Role: "user", Content: "U2"},
}

// resolveTemplate decides how chats are rendered: it returns what to pass to
// llama.cpp ("" for the engine's ChatML) and the name shown to users.
func resolveTemplate(m *llama.Model, name string) (tmpl, shown string) {
	if name != "" {
		return name, name
	}
	src := chatTemplate(m)
	if src == "" {
		return "", chatMLNoTemplate
	}
	want, ok := applyTemplate(src, probeChat, true)
	if !ok {
		slog.Warn("the model's chat template is not one llama.cpp recognises; chats are rendered as ChatML (set a built-in chat template by name to choose another)",
			"template", abbreviate(src, 120))
		return "", chatMLUnrecognised
	}
	for _, n := range builtinTemplates() {
		if got, ok := applyTemplate(n, probeChat, true); ok && got == want {
			return src, n
		}
	}
	return src, "the model's own"
}

// abbreviate shortens s to at most n bytes for a log line.
func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

package engine

import "strings"

// Message is one turn of a chat.
type Message struct {
	Role    string // system, user or assistant
	Content string
}

// DefaultChatStop ends a reply rendered with the default template.
const DefaultChatStop = "<|im_end|>"

// RenderChat turns messages into a prompt that asks for the assistant's next
// reply. It uses the model's tokenizer.chat_template when llama.cpp
// recognises it; otherwise (no template, or an unknown one) it uses the
// default ChatML layout:
//
//	<|im_start|>system
//	You are helpful.<|im_end|>
//	<|im_start|>user
//	Hi<|im_end|>
//	<|im_start|>assistant
//
// stops lists strings that end the reply for the template used.
func (e *Engine) RenderChat(msgs []Message) (prompt string, stops []string) {
	if tmpl := e.info.ChatTemplate; tmpl != "" {
		if out, ok := applyTemplate(tmpl, msgs, true); ok {
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

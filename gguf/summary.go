package gguf

import "fmt"

// Summary is what people and the hive want to know about a model file.
type Summary struct {
	Architecture    string `json:"architecture"`
	Name            string `json:"name,omitempty"`
	Parameters      int64  `json:"parameters"`
	Quantization    string `json:"quantization"`
	ContextLength   int    `json:"context_length"`
	Size            int64  `json:"size"`
	TensorCount     int    `json:"tensor_count"`
	HasChatTemplate bool   `json:"has_chat_template"`
	ChatTemplate    string `json:"chat_template,omitempty"`
}

// Summary derives the model summary from the metadata and tensor descriptions.
// Quantization is the name of general.file_type when present, otherwise the
// tensor type holding the most elements.
func (f *File) Summary() Summary {
	s := Summary{Size: f.Size, TensorCount: len(f.Tensors)}
	s.Architecture, _ = f.String("general.architecture")
	s.Name, _ = f.String("general.name")
	byType := map[TensorType]int64{}
	for _, t := range f.Tensors {
		n := t.Elements()
		s.Parameters += n
		byType[t.Type] += n
	}
	if ft, ok := f.Uint("general.file_type"); ok && ft <= 0xffffffff {
		s.Quantization = FileType(ft).String()
	} else {
		var best TensorType
		var bestN int64 = -1
		for t, n := range byType {
			if n > bestN || (n == bestN && t < best) {
				best, bestN = t, n
			}
		}
		if bestN >= 0 {
			s.Quantization = best.String()
		}
	}
	if s.Architecture != "" {
		if n, ok := f.Uint(s.Architecture + ".context_length"); ok && n <= 1<<40 {
			s.ContextLength = int(n)
		}
	}
	s.ChatTemplate, s.HasChatTemplate = f.String("tokenizer.chat_template")
	return s
}

// FormatParameters renders a parameter count the way model cards do: "1.10B",
// "2.3M", "950K".
func FormatParameters(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// FormatBytes renders a size in binary units: "1.7 MiB", "620.1 MiB".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// KVCacheBytes is the F16 key/value cache of one context of ctxSize tokens
// in full-attention layers (see Metadata.Estimate for the whole layout). It
// is 0 when the metadata lacks the needed hyperparameters.
func (f *File) KVCacheBytes(ctxSize int) int64 {
	return f.Metadata().KVBytesPerToken("f16") * int64(ctxSize)
}

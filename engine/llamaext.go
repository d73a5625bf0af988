package engine

/*
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

// The few llama.cpp entry points the Go binding does not wrap. The symbols are
// linked from the binding's own llama.cpp build; the prototypes are copied
// from llama.h and sampling_ext.h of the pinned module version.
struct llama_model;
struct llama_context;
struct common_sampler;
struct llama_vocab;
struct llama_sampler;
struct rbee_chat_message { const char * role; const char * content; };

void llama_free(struct llama_context * ctx);
uint64_t llama_model_size(const struct llama_model * model);
const char * llama_model_chat_template(const struct llama_model * model, const char * name);
int32_t llama_model_meta_val_str(const struct llama_model * model, const char * key, char * buf, size_t buf_size);
int32_t llama_chat_apply_template(const char * tmpl, const struct rbee_chat_message * chat, size_t n_msg, bool add_ass, char * buf, int32_t length);
void common_sampler_cfree(struct common_sampler * sampler);
const struct llama_vocab * llama_model_get_vocab(const struct llama_model * model);
int32_t llama_token_to_piece(const struct llama_vocab * vocab, int32_t token, char * buf, int32_t length, int32_t lstrip, bool special);
int32_t llama_model_n_ctx_train(const struct llama_model * model);
int32_t llama_model_n_layer(const struct llama_model * model);
void llama_set_embeddings(struct llama_context * ctx, bool embeddings);
int llama_pooling_type(const struct llama_context * ctx);
int32_t llama_chat_builtin_templates(const char ** output, size_t len);
struct llama_sampler * llama_sampler_init_grammar(const struct llama_vocab * vocab, const char * grammar_str, const char * grammar_root);
void llama_sampler_free(struct llama_sampler * smpl);
*/
import "C"

import (
	"runtime"
	"unsafe"

	"github.com/ollama/ollama/llama"
)

// The binding's handle types each hold the C pointer as their first field
// (checked against github.com/ollama/ollama v0.17.4). These views read it so
// that we can free what the binding has no method for.
type (
	modelView   struct{ c *C.struct_llama_model }
	contextView struct{ c *C.struct_llama_context }
	samplerView struct{ c *C.struct_common_sampler }
)

func cModel(m *llama.Model) *C.struct_llama_model {
	return (*modelView)(unsafe.Pointer(m)).c
}

func cContext(lc *llama.Context) *C.struct_llama_context {
	return (*contextView)(unsafe.Pointer(lc)).c
}

// tokenText returns the text of a token as output shows it: control tokens
// (BOS, EOS, end-of-turn markers) render as nothing, as in llama-server.
func tokenText(m *llama.Model, tok int) string {
	vocab := C.llama_model_get_vocab(cModel(m))
	var small [32]byte
	buf := small[:]
	for {
		n := int(C.llama_token_to_piece(vocab, C.int32_t(tok), (*C.char)(unsafe.Pointer(&buf[0])), C.int32_t(len(buf)), 0, false))
		if n >= 0 {
			return string(buf[:n])
		}
		buf = make([]byte, -n)
	}
}

// trainedContext is the context length the model was trained with.
func trainedContext(m *llama.Model) int {
	return int(C.llama_model_n_ctx_train(cModel(m)))
}

// layerCount is the number of repeating layers of the model.
func layerCount(m *llama.Model) int { return int(C.llama_model_n_layer(cModel(m))) }

// setEmbeddings turns the extraction of embeddings on or off.
func setEmbeddings(lc *llama.Context, on bool) {
	C.llama_set_embeddings(cContext(lc), C.bool(on))
}

// llama.cpp's pooling types (enum llama_pooling_type).
const (
	poolingNone = 0
	poolingRank = 4
)

// poolingType is how the context pools embeddings per sequence.
func poolingType(lc *llama.Context) int {
	return int(C.llama_pooling_type(cContext(lc)))
}

// grammarParses reports whether llama.cpp accepts a GBNF grammar with the
// root rule "root" for the model's vocabulary.
func grammarParses(m *llama.Model, grammar string) bool {
	cg := C.CString(grammar)
	defer C.free(unsafe.Pointer(cg))
	root := C.CString("root")
	defer C.free(unsafe.Pointer(root))
	smpl := C.llama_sampler_init_grammar(C.llama_model_get_vocab(cModel(m)), cg, root)
	if smpl == nil {
		return false
	}
	C.llama_sampler_free(smpl)
	return true
}

// builtinTemplates lists the names of llama.cpp's built-in chat templates.
func builtinTemplates() []string {
	n := int(C.llama_chat_builtin_templates(nil, 0))
	if n <= 0 {
		return nil
	}
	ptrs := make([]*C.char, n)
	C.llama_chat_builtin_templates((**C.char)(unsafe.Pointer(&ptrs[0])), C.size_t(n))
	names := make([]string, n)
	for i, p := range ptrs {
		names[i] = C.GoString(p)
	}
	return names
}

// freeContext releases a llama context (its KV cache and compute buffers).
func freeContext(lc *llama.Context) {
	v := (*contextView)(unsafe.Pointer(lc))
	if v.c != nil {
		C.llama_free(v.c)
		v.c = nil
	}
}

// freeSampler releases a sampling context now instead of at garbage collection.
func freeSampler(sc *llama.SamplingContext) {
	v := (*samplerView)(unsafe.Pointer(sc))
	if v.c == nil {
		return
	}
	runtime.SetFinalizer(sc, nil)
	C.common_sampler_cfree(v.c)
	v.c = nil
}

// modelSize is the number of bytes of the model's tensors.
func modelSize(m *llama.Model) uint64 {
	return uint64(C.llama_model_size(cModel(m)))
}

// modelMeta returns a GGUF metadata value as a string, or "" when absent.
func modelMeta(m *llama.Model, key string) string {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	buf := make([]byte, 256)
	for {
		n := int(C.llama_model_meta_val_str(cModel(m), ck, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf))))
		if n < 0 {
			return ""
		}
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, n+1)
	}
}

// chatTemplate returns the model's tokenizer.chat_template, or "".
func chatTemplate(m *llama.Model) string {
	p := C.llama_model_chat_template(cModel(m), nil)
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

// applyTemplate renders messages with llama.cpp's built-in template
// detection. ok is false when llama.cpp does not recognise tmpl.
func applyTemplate(tmpl string, msgs []Message, addAssistant bool) (string, bool) {
	ctmpl := C.CString(tmpl)
	defer C.free(unsafe.Pointer(ctmpl))
	cmsgs := (*C.struct_rbee_chat_message)(C.malloc(C.size_t(len(msgs)+1) * C.size_t(unsafe.Sizeof(C.struct_rbee_chat_message{}))))
	defer C.free(unsafe.Pointer(cmsgs))
	view := unsafe.Slice(cmsgs, len(msgs)+1)
	size := 0
	for i, m := range msgs {
		view[i].role = C.CString(m.Role)
		view[i].content = C.CString(m.Content)
		size += len(m.Role) + len(m.Content)
		defer C.free(unsafe.Pointer(view[i].role))
		defer C.free(unsafe.Pointer(view[i].content))
	}
	buf := make([]byte, 2*size+1024)
	for {
		n := int(C.llama_chat_apply_template(ctmpl, cmsgs, C.size_t(len(msgs)), C.bool(addAssistant), (*C.char)(unsafe.Pointer(&buf[0])), C.int32_t(len(buf))))
		if n < 0 {
			return "", false
		}
		if n <= len(buf) {
			return string(buf[:n]), true
		}
		buf = make([]byte, n)
	}
}

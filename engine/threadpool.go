package engine

/*
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

// Prototypes and the parameter struct copied from ggml.h, ggml-cpu.h and
// llama.h of the pinned module version. The threadpool functions live in
// the CPU backend library, which may be loaded at run time, so they are
// looked up through the backend registry as llama-server does.
struct ggml_backend_reg;
struct llama_context;
struct ggml_threadpool;
struct rbee_threadpool_params {
	bool     cpumask[512]; // GGML_MAX_N_THREADS; all false: default affinity
	int      n_threads;
	int      prio;         // enum ggml_sched_priority
	uint32_t poll;         // 0 (sleep at once) to 100 (spin the longest)
	bool     strict_cpu;
	bool     paused;
};
typedef struct ggml_threadpool * (*rbee_threadpool_new_t)(struct rbee_threadpool_params * params);
typedef void (*rbee_threadpool_free_t)(struct ggml_threadpool * tp);

void * ggml_backend_reg_get_proc_address(struct ggml_backend_reg * reg, const char * name);
void llama_attach_threadpool(struct llama_context * ctx, struct ggml_threadpool * tp, struct ggml_threadpool * tp_batch);
void llama_detach_threadpool(struct llama_context * ctx);

static struct ggml_threadpool * rbee_threadpool_new(struct ggml_backend_reg * reg, int n_threads, uint32_t poll) {
	rbee_threadpool_new_t fn = (rbee_threadpool_new_t) ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_new");
	if (fn == NULL) {
		return NULL;
	}
	struct rbee_threadpool_params p;
	memset(&p, 0, sizeof p);
	p.n_threads = n_threads;
	p.poll = poll;
	return fn(&p);
}

static void rbee_threadpool_free(struct ggml_backend_reg * reg, struct ggml_threadpool * tp) {
	rbee_threadpool_free_t fn = (rbee_threadpool_free_t) ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_free");
	if (fn != NULL) {
		fn(tp);
	}
}
*/
import "C"

import (
	"log/slog"

	"github.com/ollama/ollama/llama"
)

// threadPoll is how long the pool's threads spin for the next batch before
// they sleep, on ggml's scale of 0 to 100 (llama-server's default is 50).
const threadPoll = 50

// threadPool is a set of CPU threads that lives as long as the engine's
// context. Without one, ggml starts and joins its threads for every batch:
// a thread created and destroyed per generated token.
type threadPool struct{ c *C.struct_ggml_threadpool }

// attachThreadPool gives lc a pool of threads for prompts and generation.
// With one thread, or a CPU backend without pools, it returns nil and ggml
// keeps its own threads.
func attachThreadPool(lc *llama.Context, threads int) *threadPool {
	reg := cpuReg()
	if threads <= 1 || reg == nil {
		return nil
	}
	tp := C.rbee_threadpool_new(reg, C.int(threads), threadPoll)
	if tp == nil {
		slog.Warn("the CPU backend offers no thread pool; ggml starts its threads for every batch", "threads", threads)
		return nil
	}
	C.llama_attach_threadpool(cContext(lc), tp, tp)
	return &threadPool{c: tp}
}

// free detaches the pool from lc and stops its threads. A nil pool is a no-op.
func (p *threadPool) free(lc *llama.Context) {
	if p == nil || p.c == nil {
		return
	}
	if lc != nil {
		C.llama_detach_threadpool(cContext(lc))
	}
	C.rbee_threadpool_free(cpuReg(), p.c)
	p.c = nil
}

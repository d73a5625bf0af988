package engine

/*
#cgo linux LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>

// Prototypes copied from ggml-backend.h of the pinned module version; the
// symbols are linked from the binding's own ggml build.
enum ggml_backend_dev_type {
	GGML_BACKEND_DEVICE_TYPE_CPU,
	GGML_BACKEND_DEVICE_TYPE_GPU,
	GGML_BACKEND_DEVICE_TYPE_IGPU,
	GGML_BACKEND_DEVICE_TYPE_ACCEL
};
struct ggml_backend_device;
struct ggml_backend_reg;
struct ggml_backend_feature { const char * name; const char * value; };
typedef struct ggml_backend_feature * (*rbee_get_features_t)(struct ggml_backend_reg * reg);

struct ggml_backend_device * ggml_backend_dev_by_type(enum ggml_backend_dev_type type);
struct ggml_backend_reg * ggml_backend_dev_backend_reg(struct ggml_backend_device * device);
void * ggml_backend_reg_get_proc_address(struct ggml_backend_reg * reg, const char * name);

static struct ggml_backend_reg * rbee_cpu_reg(void) {
	struct ggml_backend_device * dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
	return dev ? ggml_backend_dev_backend_reg(dev) : NULL;
}

// rbee_object_path is the file (shared library or executable) that holds p.
static const char * rbee_object_path(void * p) {
	Dl_info info;
	if (dladdr(p, &info) == 0) {
		return NULL;
	}
	return info.dli_fname;
}

static struct ggml_backend_feature * rbee_cpu_features(struct ggml_backend_reg * reg) {
	rbee_get_features_t fn = (rbee_get_features_t) ggml_backend_reg_get_proc_address(reg, "ggml_backend_get_features");
	return fn ? fn(reg) : NULL;
}

static struct ggml_backend_feature * rbee_feature_at(struct ggml_backend_feature * f, int i) { return &f[i]; }
*/
import "C"

import (
	"log/slog"
	"os"
	"strings"
	"sync"
	"unsafe"

	"github.com/ollama/ollama/llama"
	"github.com/rbee-dev/rbee/engine/cpu"
)

// Backend is what llama.cpp computes with in this process.
type Backend struct {
	// Name is the rbee backend: "cpu", or "cuda" for an engine whose layers
	// are on a GPU (its CPU kernels still run the rest).
	Name string `json:"backend"`
	// CPUVariant is the ggml CPU library in use ("icelake", "haswell", …),
	// or cpu.BuiltinVariant() for the kernels compiled into the binary.
	CPUVariant string `json:"cpu_variant"`
	// Library is the file the CPU kernels come from; empty for the built-in ones.
	Library string `json:"cpu_library,omitempty"`
	// Features are the CPU features those kernels were compiled for
	// ("AVX2", "AVX512", …), as ggml names them.
	Features []string `json:"cpu_backend_features"`
	// Device and OffloadedLayers are, for an engine on "cuda", the CUDA
	// device its layers are on and how many (the output layer counts as
	// one); 0 on the CPU.
	Device          int `json:"device"`
	OffloadedLayers int `json:"offloaded_layers"`
}

var (
	backendOnce sync.Once
	backendInfo Backend
)

// initBackends loads ggml's backends once per process: the best CPU library
// of the library folder that this CPU runs, else the kernels built into the
// binary.
func initBackends() {
	backendOnce.Do(func() {
		// ggml's own default is ../lib/ollama from the executable; rbee's
		// library folder sits beside it.
		if _, set := os.LookupEnv(cpu.LibraryPathEnv); !set {
			if dir := cpu.LibraryDir(); dir != "" {
				if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
					os.Setenv(cpu.LibraryPathEnv, dir)
				}
			}
		}
		llama.BackendInit()
		backendInfo = probeBackend()
		slog.Info("ggml backend", "backend", backendInfo.Name, "cpu_variant", backendInfo.CPUVariant,
			"library", backendInfo.Library, "features", strings.Join(backendInfo.Features, ","),
			"library_path", os.Getenv(cpu.LibraryPathEnv))
	})
}

// CurrentBackend reports what the process computes with; it loads the
// backends first if no model has been loaded yet.
func CurrentBackend() Backend {
	initBackends()
	b := backendInfo
	b.Features = append([]string(nil), b.Features...)
	return b
}

// probeBackend asks ggml which CPU device llama.cpp takes (the first one,
// which is the loaded library with the best score) and which file it lives in.
func probeBackend() Backend {
	b := Backend{Name: "cpu", CPUVariant: cpu.BuiltinVariant(), Features: []string{}}
	reg := C.rbee_cpu_reg()
	if reg == nil {
		return b
	}
	if p := C.rbee_object_path(unsafe.Pointer(reg)); p != nil {
		if v, ok := cpu.VariantOfLibrary(C.GoString(p)); ok {
			b.CPUVariant, b.Library = v, C.GoString(p)
		}
	}
	if f := C.rbee_cpu_features(reg); f != nil {
		for i := C.int(0); ; i++ {
			feat := C.rbee_feature_at(f, i)
			if feat.name == nil {
				break
			}
			if name := C.GoString(feat.name); C.GoString(feat.value) == "1" {
				b.Features = append(b.Features, name)
			}
		}
	}
	return b
}

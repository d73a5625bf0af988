package engine

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ollama/ollama/llama"
)

// TestCUDAWithoutTheLibraryFailsToLoad: where ggml lists no CUDA device (no
// libggml-cuda.so in the library folder, or no GPU) a cuda engine is a load
// failure that says why, never a model on the CPU; the options are checked
// first. The CPU engine offloads nothing. Skipped where ggml does list one:
// scripts/gpu-check.sh covers that machine.
func TestCUDAWithoutTheLibraryFailsToLoad(t *testing.T) {
	initBackends()
	for _, d := range llama.EnumerateGPUs() {
		if d.Library == "CUDA" {
			t.Skip("ggml lists a CUDA device here; scripts/gpu-check.sh checks the offload")
		}
	}
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"cuda device 0", Options{Backend: BackendCUDA}, "CUDA device 0 is not there: ggml sees 0 CUDA devices"},
		{"cuda device 2, 10 layers", Options{Backend: BackendCUDA, Device: 2, GPULayers: 10}, "CUDA device 2 is not there"},
		{"negative layers", Options{Backend: BackendCUDA, GPULayers: -1}, "must not be negative"},
		{"another backend", Options{Backend: "rocm"}, `backend "rocm" is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Slots, tt.opts.CtxSize, tt.opts.Threads = 1, 128, 1
			e, err := Load(context.Background(), tinyModel(t), tt.opts)
			if err == nil {
				e.Close()
				t.Fatalf("Load with %+v succeeded: a cuda engine ran on the CPU", tt.opts)
			}
			if !errors.Is(err, ErrLoad) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load = %v; want ErrLoad containing %q", err, tt.want)
			}
		})
	}
	b := load(t, Options{Slots: 1, CtxSize: 128}).Info().Backend
	if b.Name != BackendCPU || b.Device != 0 || b.OffloadedLayers != 0 {
		t.Errorf("the CPU engine reports %+v; want cpu, device 0, nothing offloaded", b)
	}
}

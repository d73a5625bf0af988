package engine

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/ollama/ollama/llama"

	"github.com/rbee-dev/rbee/engine/cpu"
)

// allLayers asks llama.cpp to offload every layer (it takes the smaller of
// this and the model's layers + 1).
const allLayers = 999

// modelParams are the llama.cpp model parameters for the options: on the
// CPU no layer is offloaded, exactly as before GPUs were known; on cuda the
// model goes to the one CUDA device asked for, with GPULayers layers (all
// by default). The backends must be loaded (initBackends).
func (o Options) modelParams() (llama.ModelParams, error) {
	mp := llama.ModelParams{UseMmap: true, Progress: o.Progress}
	if o.Backend != BackendCUDA {
		return mp, nil
	}
	dev, err := cudaDevice(o.Device)
	if err != nil {
		return mp, err
	}
	mp.Devices = []uint64{dev}
	mp.MainGpu = 0 // the index into Devices
	mp.NumGpuLayers = o.gpuLayers()
	return mp, nil
}

// gpuLayers is how many layers cuda is asked to offload: GPULayers, or all.
func (o Options) gpuLayers() int {
	if o.GPULayers > 0 {
		return o.GPULayers
	}
	return allLayers
}

// cudaDevice is ggml's device number of the n-th CUDA device. ggml lists a
// CUDA device only when its CUDA library loaded from the library folder
// and found the GPU; otherwise the load fails instead of running on the CPU.
func cudaDevice(n int) (uint64, error) {
	var ids []uint64
	for _, d := range llama.EnumerateGPUs() {
		if d.Library == "CUDA" {
			ids = append(ids, d.LlamaID)
		}
	}
	if n < len(ids) {
		return ids[n], nil
	}
	return 0, fmt.Errorf("backend cuda: CUDA device %d is not there: ggml sees %d CUDA devices (library folder %s; it needs libggml-cuda.so from `just build-cuda`, the CUDA runtime it links and a GPU nvidia-smi lists)",
		n, len(ids), os.Getenv(cpu.LibraryPathEnv))
}

// backend is what a loaded engine computes with: the process's CPU
// kernels, and for cuda the device and the layers llama.cpp offloaded.
func (e *Engine) backend() Backend {
	b := CurrentBackend()
	if e.opts.Backend != BackendCUDA {
		return b
	}
	total := layerCount(e.model) + 1 // the output layer is offloaded last
	b.Name, b.Device, b.OffloadedLayers = BackendCUDA, e.opts.Device, min(e.opts.gpuLayers(), total)
	slog.Info("model offloaded to the GPU", "backend", b.Name, "device", b.Device,
		"offloaded_layers", b.OffloadedLayers, "layers", total, "cpu_variant", b.CPUVariant)
	return b
}

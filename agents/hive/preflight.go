package hive

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/agents/hive/modelstore"
	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/engine/cpu"
	"github.com/rbee-dev/rbee/gguf"
)

// estimateWorker reads the model's header (every shard of a split model)
// and estimates what a worker with cfg allocates. kvCacheType is the pool's
// KV cache element type ("" = f16).
func estimateWorker(cfg hiveapi.WorkerConfig, m hiveapi.Model, kvCacheType string) (gguf.Memory, error) {
	meta, err := gguf.ReadModelMetadata(m.Path)
	if err != nil {
		return gguf.Memory{}, api.Errorf(http.StatusUnprocessableEntity, "INVALID_MODEL", "model %q (%s) cannot be read: %s", m.Name, m.Path, modelstore.ReadErrorText(err))
	}
	mem, err := meta.Estimate(gguf.Workload{CtxSize: cfg.CtxSize, Slots: cfg.Slots, KVCacheType: kvCacheType, FlashAttn: cfg.FlashAttn})
	if err != nil {
		return gguf.Memory{}, api.Errorf(http.StatusBadRequest, "INVALID_FIELD", "%v", err).WithDetails(map[string]any{"field": "kv_cache_type"})
	}
	return mem, nil
}

// memoryText is the breakdown shown when a worker does not fit.
func memoryText(mem gguf.Memory, cfg hiveapi.WorkerConfig) string {
	return fmt.Sprintf("weights %s + KV cache %s for %d ctx × %d slots + compute %s",
		gguf.FormatBytes(mem.Weights), gguf.FormatBytes(mem.KVCache), cfg.CtxSize, cfg.Slots, gguf.FormatBytes(mem.Compute+mem.Output))
}

// preflight checks that the node can run a worker with cfg on model m: the
// backend and device exist, the CPU runs this binary, and memory suffices.
// It never substitutes another backend.
func preflight(cfg hiveapi.WorkerConfig, m hiveapi.Model, res hiveapi.Resources) error {
	if !slices.Contains(res.Backends, cfg.Backend) {
		missing := backendMissing(cfg.Backend, res)
		return api.Errorf(http.StatusBadRequest, "BACKEND_UNAVAILABLE",
			"backend %q is not available on this node: %s; available: %s, and rbee never runs a %s pool on the CPU instead (change the pool's backend or its nodes)",
			cfg.Backend, strings.Join(missing, ", and "), strings.Join(res.Backends, ", "), cfg.Backend).
			WithDetails(map[string]any{"backend": cfg.Backend, "available": res.Backends, "missing": missing})
	}
	var gpu *hiveapi.GPU
	if cfg.Backend == hiveapi.BackendCPU {
		if cfg.Device != 0 {
			return api.Errorf(http.StatusBadRequest, "DEVICE_NOT_FOUND", "device %d does not exist for the cpu backend; use device 0", cfg.Device).
				WithDetails(map[string]any{"backend": cfg.Backend, "device": cfg.Device, "devices": []int{0}})
		}
		if err := cpu.Check(); err != nil {
			return api.Errorf(http.StatusBadRequest, "CPU_UNSUPPORTED", "%v", err)
		}
	} else {
		var have []int
		for i := range res.GPUs {
			if res.GPUs[i].Backend == cfg.Backend {
				have = append(have, res.GPUs[i].Index)
				if res.GPUs[i].Index == cfg.Device {
					gpu = &res.GPUs[i]
				}
			}
		}
		if gpu == nil {
			return api.Errorf(http.StatusBadRequest, "DEVICE_NOT_FOUND", "%s device %d does not exist on this node; devices: %v", cfg.Backend, cfg.Device, have).
				WithDetails(map[string]any{"backend": cfg.Backend, "device": cfg.Device, "devices": have})
		}
	}
	mem, err := estimateWorker(cfg, m, cfg.KVCacheType)
	if err != nil {
		return err
	}
	details := map[string]any{
		"required_bytes": mem.Total, "model_bytes": mem.Weights, "kv_cache_bytes": mem.KVCache,
		"compute_bytes": mem.Compute + mem.Output, "ctx_size": cfg.CtxSize, "slots": cfg.Slots,
	}
	if gpu != nil {
		if gpu.VRAMFree > 0 && mem.Total > gpu.VRAMFree {
			details["available_bytes"] = gpu.VRAMFree
			return api.Errorf(http.StatusInsufficientStorage, "VRAM_EXHAUSTED",
				"not enough VRAM on %s device %d: %s required (%s), %s free; lower ctx_size or slots, or use a smaller model",
				cfg.Backend, cfg.Device, gguf.FormatBytes(mem.Total), memoryText(mem, cfg), gguf.FormatBytes(gpu.VRAMFree)).
				WithDetails(details)
		}
		return nil
	}
	if res.RAMAvailable > 0 && mem.Total > res.RAMAvailable {
		details["available_bytes"] = res.RAMAvailable
		return api.Errorf(http.StatusInsufficientStorage, "INSUFFICIENT_RAM",
			"not enough RAM: %s required (%s), %s available; lower ctx_size or slots, or use a smaller model",
			gguf.FormatBytes(mem.Total), memoryText(mem, cfg), gguf.FormatBytes(res.RAMAvailable)).
			WithDetails(details)
	}
	return nil
}

// backendMissing says what the node lacks for backend, which it does not
// offer: for cuda, an NVIDIA GPU and/or the CUDA library.
func backendMissing(backend string, res hiveapi.Resources) []string {
	if backend != hiveapi.BackendCUDA {
		return []string{fmt.Sprintf("this rbee binary carries no %s backend", backend)}
	}
	var out []string
	if !slices.ContainsFunc(res.GPUs, func(g hiveapi.GPU) bool { return g.Backend == hiveapi.BackendCUDA }) {
		out = append(out, "no NVIDIA GPU is listed (nvidia-smi finds none)")
	}
	if res.CUDALibrary == "" {
		out = append(out, fmt.Sprintf("the CUDA library %s is not in the library folder %s beside the rbee binary (build it with `just build-cuda` on a machine with nvcc, then apply again)", cudaLibraryName, cpu.LibraryFolder))
	}
	if len(out) == 0 {
		out = append(out, "the hive does not offer it")
	}
	return out
}

// validateWorker checks a worker id and config (already normalized).
func validateWorker(id string, c hiveapi.WorkerConfig) error {
	bad := func(field, format string, args ...any) error {
		return api.Errorf(http.StatusBadRequest, "INVALID_FIELD", "%s: %s", field, fmt.Sprintf(format, args...)).
			WithDetails(map[string]any{"field": field})
	}
	if err := hiveapi.ValidName("worker id", id); err != nil {
		return api.Errorf(http.StatusBadRequest, "INVALID_NAME", "%v", err)
	}
	if err := hiveapi.ValidName("model", c.Model); err != nil {
		return bad("model", "%v", err)
	}
	if c.Pool != "" {
		if err := hiveapi.ValidName("pool", c.Pool); err != nil {
			return bad("pool", "%v", err)
		}
	}
	switch {
	case c.Slots < 1 || c.Slots > hiveapi.MaxSlots:
		return bad("slots", "%d is outside 1..%d", c.Slots, hiveapi.MaxSlots)
	case c.CtxSize < hiveapi.MinCtxSize || c.CtxSize > hiveapi.MaxCtxSize:
		return bad("ctx_size", "%d is outside %d..%d", c.CtxSize, hiveapi.MinCtxSize, hiveapi.MaxCtxSize)
	case c.Threads < 0 || c.Threads > 1024:
		return bad("threads", "%d is outside 0..1024 (0 = automatic)", c.Threads)
	case c.Device < 0 || c.Device > hiveapi.MaxDevice:
		return bad("device", "%d is outside 0..%d", c.Device, hiveapi.MaxDevice)
	case c.GPULayers < 0:
		return bad("gpu_layers", "%d is negative (0 = every layer on the GPU)", c.GPULayers)
	case c.GPULayers != 0 && c.Backend == hiveapi.BackendCPU:
		return bad("gpu_layers", "%d needs a GPU backend; a cpu worker offloads nothing", c.GPULayers)
	case c.Port != 0 && (c.Port < workerapi.MinPort || c.Port > workerapi.MaxPort):
		return bad("port", "%d is outside %d..%d (0 = the hive picks one)", c.Port, workerapi.MinPort, workerapi.MaxPort)
	}
	if !slices.Contains([]string{hiveapi.BackendCPU, hiveapi.BackendCUDA, hiveapi.BackendMetal}, c.Backend) {
		return bad("backend", "%q is not a backend; allowed: cpu, cuda, metal", c.Backend)
	}
	for field, v := range map[string]string{"idle_timeout": c.IdleTimeout, "load_timeout": c.LoadTimeout, "drain_timeout": c.DrainTimeout} {
		d, err := parseDuration(v)
		if err != nil || d < 0 {
			return bad(field, "%q is not a duration such as \"30s\" or \"5m\"", v)
		}
	}
	return nil
}

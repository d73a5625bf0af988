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

// KVShape is what the KV cache size depends on, read from GGUF metadata.
type KVShape struct {
	Layers    int // {arch}.block_count
	Embedding int // {arch}.embedding_length
	Heads     int // {arch}.attention.head_count
	KVHeads   int // {arch}.attention.head_count_kv (defaults to Heads)
}

// ReadKVShape reads the KV cache shape of a GGUF model; a file without
// these keys gives a zero shape (no KV estimate).
func ReadKVShape(path string) (KVShape, error) {
	f, err := gguf.ReadFile(path)
	if err != nil {
		return KVShape{}, err
	}
	arch, _ := f.String("general.architecture")
	get := func(key string) int {
		v, ok := f.Uint(arch + "." + key)
		if !ok || v > 1<<24 {
			return 0
		}
		return int(v)
	}
	s := KVShape{Layers: get("block_count"), Embedding: get("embedding_length"), Heads: get("attention.head_count"), KVHeads: get("attention.head_count_kv")}
	if s.KVHeads == 0 {
		s.KVHeads = s.Heads
	}
	return s, nil
}

// Requirement is the memory one worker is expected to need.
type Requirement struct {
	ModelBytes int64 // model file size × 1.2 (weights plus compute buffers)
	KVBytes    int64 // K and V caches in f16 for ctx × slots tokens
	Total      int64
}

// EstimateMemory applies the preflight rule: model size × 1.2 plus the KV
// cache for ctx × slots tokens (2 tensors × layers × kv dim × 2 bytes).
func EstimateMemory(modelSize int64, kv KVShape, ctx, slots int) Requirement {
	r := Requirement{ModelBytes: modelSize + modelSize/5}
	if kv.Heads > 0 {
		kvDim := int64(kv.Embedding) * int64(kv.KVHeads) / int64(kv.Heads)
		r.KVBytes = 2 * int64(kv.Layers) * kvDim * 2 * int64(ctx) * int64(slots)
	}
	r.Total = r.ModelBytes + r.KVBytes
	return r
}

// preflight checks that the node can run a worker with cfg on model m: the
// backend and device exist, the CPU runs this binary, and memory suffices.
// It never substitutes another backend.
func preflight(cfg hiveapi.WorkerConfig, m hiveapi.Model, res hiveapi.Resources) error {
	if !slices.Contains(builtBackends, cfg.Backend) {
		return api.Errorf(http.StatusBadRequest, "BACKEND_UNAVAILABLE",
			"backend %q is not available on this node: this rbee binary carries no %s backend (available: %s), and rbee never runs a %s pool on the CPU instead; set the pool's backend to \"cpu\"",
			cfg.Backend, cfg.Backend, strings.Join(res.Backends, ", "), cfg.Backend).
			WithDetails(map[string]any{"backend": cfg.Backend, "available": res.Backends, "built": builtBackends})
	}
	if !slices.Contains(res.Backends, cfg.Backend) {
		return api.Errorf(http.StatusBadRequest, "BACKEND_UNAVAILABLE",
			"backend %q is not available on this node; available: %s (rbee never falls back to another backend: change the pool's backend or its nodes)",
			cfg.Backend, strings.Join(res.Backends, ", ")).
			WithDetails(map[string]any{"backend": cfg.Backend, "available": res.Backends})
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
	kv, err := ReadKVShape(m.Path)
	if err != nil {
		return api.Errorf(http.StatusUnprocessableEntity, "INVALID_MODEL", "model %q (%s) cannot be read: %s", m.Name, m.Path, modelstore.ReadErrorText(err))
	}
	req := EstimateMemory(m.Size, kv, cfg.CtxSize, cfg.Slots)
	details := map[string]any{
		"required_bytes": req.Total, "model_bytes": req.ModelBytes, "kv_cache_bytes": req.KVBytes,
		"ctx_size": cfg.CtxSize, "slots": cfg.Slots,
	}
	if gpu != nil {
		if gpu.VRAMFree > 0 && req.Total > gpu.VRAMFree {
			details["available_bytes"] = gpu.VRAMFree
			return api.Errorf(http.StatusInsufficientStorage, "VRAM_EXHAUSTED",
				"not enough VRAM on %s device %d: %s required (model %s × 1.2 + KV cache %s for %d ctx × %d slots), %s free; lower ctx_size or slots, or use a smaller model",
				cfg.Backend, cfg.Device, gguf.FormatBytes(req.Total), gguf.FormatBytes(m.Size), gguf.FormatBytes(req.KVBytes), cfg.CtxSize, cfg.Slots, gguf.FormatBytes(gpu.VRAMFree)).
				WithDetails(details)
		}
		return nil
	}
	if res.RAMAvailable > 0 && req.Total > res.RAMAvailable {
		details["available_bytes"] = res.RAMAvailable
		return api.Errorf(http.StatusInsufficientStorage, "INSUFFICIENT_RAM",
			"not enough RAM: %s required (model %s × 1.2 + KV cache %s for %d ctx × %d slots), %s available; lower ctx_size or slots, or use a smaller model",
			gguf.FormatBytes(req.Total), gguf.FormatBytes(m.Size), gguf.FormatBytes(req.KVBytes), cfg.CtxSize, cfg.Slots, gguf.FormatBytes(res.RAMAvailable)).
			WithDetails(details)
	}
	return nil
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

// Package hiveapi is the wire contract of the hive (rbee's node agent): the
// JSON types of its HTTP API and a Client that speaks it. It has no cgo and no
// dependency on the hive itself, so the CLI, the planner's refresher and the
// applier can import it cheaply.
package hiveapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/gguf"
	"github.com/rbee-dev/rbee/spec"
)

// DefaultPort is the port a hive listens on unless told otherwise.
const DefaultPort = spec.DefaultHivePort

// Health is the body of GET /v1/health.
type Health struct {
	Status  string `json:"status"` // always "ok" when the hive answers
	Version string `json:"version"`
	// CPUVariant is the ggml CPU library the node's workers load (as in
	// Resources), so that apply records it with the freshly installed hive.
	CPUVariant string `json:"cpu_variant,omitempty"`
}

// ModelSpec is the body of PUT /v1/models/{name}: where a model comes from.
// Source is one of "hf:org/repo" (with File and Revision), "https://…",
// "file:///abs/path.gguf" or "synth:PRESET". SHA256, when set, pins the
// content: a file with another digest is never catalogued.
type ModelSpec struct {
	Source   string `json:"source"`
	File     string `json:"file,omitempty"`
	Revision string `json:"revision,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
}

// Model is one catalog entry: a model file present on the node, with the GGUF
// metadata read from it.
type Model struct {
	Name          string    `json:"name"`
	Source        string    `json:"source"`
	Provider      string    `json:"provider"` // hf | https | file | synth
	File          string    `json:"file,omitempty"`
	Revision      string    `json:"revision,omitempty"`
	Path          string    `json:"path"`
	Size          int64     `json:"size"`
	SHA256        string    `json:"sha256"`
	Architecture  string    `json:"architecture"`
	Parameters    int64     `json:"parameters"`
	Quantization  string    `json:"quantization"`
	ContextLength int       `json:"context_length"`
	ProvisionedAt time.Time `json:"provisioned_at"`
	// Metadata is what the memory estimate needs, read from the header of
	// every shard; Size, Parameters and Metadata cover all shards.
	Metadata *gguf.Metadata `json:"metadata,omitempty"`
	// Shards lists the files of a split model (PREFIX-00001-of-0000N.gguf …),
	// the first being Path; empty for a model in one file.
	Shards []Shard `json:"shards,omitempty"`
}

// Shard is one file of a split model.
type Shard struct {
	File   string `json:"file"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Progress is one download progress event: bytes received so far, the total
// (0 when unknown) and the current rate in bytes per second.
type Progress struct {
	Bytes int64   `json:"bytes"`
	Total int64   `json:"total"`
	Rate  float64 `json:"rate"`
}

// Event types of the PUT /v1/models/{name} event stream.
const (
	EventProgress = "progress"
	EventDone     = "done"
	EventError    = "error"
)

// Event is one server-sent event of PUT /v1/models/{name} with
// "Accept: text/event-stream": progress events carry Bytes/Total/Rate, the
// last event is "done" with the catalog entry or "error" with the envelope.
type Event struct {
	Type  string     `json:"type"`
	Bytes int64      `json:"bytes"`
	Total int64      `json:"total"`
	Rate  float64    `json:"rate"`
	Model *Model     `json:"model,omitempty"`
	Error *ErrorBody `json:"error,omitempty"`
}

// ErrorBody is the error of a final "error" event (same fields as the
// api error envelope, plus the HTTP status the blocking call would answer).
type ErrorBody struct {
	Status  int            `json:"status"`
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

// Backends a worker can run on.
const (
	BackendCPU   = spec.BackendCPU
	BackendCUDA  = spec.BackendCUDA
	BackendMetal = spec.BackendMetal
)

// WorkerConfig is the body of PUT /v1/workers/{id}. Zero values take the
// defaults of Normalized. Durations are Go duration strings ("30s", "5m").
// Port, when non-zero, is the exact port the worker must listen on (the hive
// answers 409 PORT_IN_USE if it is taken); 0 lets the hive pick one. A zero
// Port is left out of the JSON, so it does not change ConfigHash.
type WorkerConfig struct {
	Model     string `json:"model"`
	Slots     int    `json:"slots,omitempty"`
	CtxSize   int    `json:"ctx_size,omitempty"`
	Threads   int    `json:"threads,omitempty"`
	Backend   string `json:"backend,omitempty"`
	Device    int    `json:"device,omitempty"`
	GPULayers int    `json:"gpu_layers,omitempty"` // layers a GPU worker offloads; 0: all
	FlashAttn bool   `json:"flash_attn,omitempty"`
	// KVCacheType, ChatTemplate and Embeddings are the worker's
	// --kv-cache-type, --chat-template and --embeddings.
	KVCacheType  string `json:"kv_cache_type,omitempty"`
	ChatTemplate string `json:"chat_template,omitempty"`
	Embeddings   bool   `json:"embeddings,omitempty"`
	Pool         string `json:"pool,omitempty"`
	Port         int    `json:"port,omitempty"`
	// IdleTimeout, LoadTimeout and DrainTimeout are the hive's own timers
	// of the worker, not part of ConfigHash: a new value applies to the
	// running worker (the idle timeout at its next health check, the load
	// timeout at its next start). DrainTimeout bounds how long a worker
	// being stopped may finish the requests in flight before it is stopped
	// anyway; "" means DefaultDrainTimeout (and is what Normalized writes
	// for it).
	IdleTimeout  string `json:"idle_timeout,omitempty"`
	LoadTimeout  string `json:"load_timeout,omitempty"`
	DrainTimeout string `json:"drain_timeout,omitempty"`
}

// Limits and defaults of WorkerConfig fields.
const (
	MaxSlots   = spec.MaxSlots
	MinCtxSize = spec.MinCtxSize
	MaxCtxSize = spec.MaxCtxSize
	MaxDevice  = spec.MaxDevice // GPU index

	DefaultSlots        = spec.DefaultSlots
	DefaultCtxSize      = spec.DefaultCtxSize
	DefaultLoadTimeout  = spec.DefaultLoadTimeout
	DefaultDrainTimeout = 30 * time.Second
)

// Normalized returns c with defaults filled in and durations in canonical
// form, so that two configs that mean the same thing hash the same.
func (c WorkerConfig) Normalized() WorkerConfig {
	if c.Slots == 0 {
		c.Slots = DefaultSlots
	}
	if c.CtxSize == 0 {
		c.CtxSize = DefaultCtxSize
	}
	if c.Backend == "" {
		c.Backend = BackendCPU
	}
	c.IdleTimeout = canonicalDuration(c.IdleTimeout, 0)
	c.LoadTimeout = canonicalDuration(c.LoadTimeout, DefaultLoadTimeout)
	if c.DrainTimeout != "" {
		if c.DrainTimeout = canonicalDuration(c.DrainTimeout, DefaultDrainTimeout); c.DrainTimeout == DefaultDrainTimeout.String() {
			c.DrainTimeout = ""
		}
	}
	return c
}

func canonicalDuration(s string, def time.Duration) string {
	if s == "" {
		return def.String()
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return s // left for validation to reject
	}
	if d == 0 {
		d = def
	}
	return d.String()
}

// ConfigHash is the identity of a worker configuration: PUT /v1/workers/{id}
// with the same hash keeps the worker, a different hash replaces it. It is
// the first 16 hex digits of the sha256 of the normalized config as JSON,
// without the timeouts: they apply to the running worker (an update in
// place, no restart).
func ConfigHash(c WorkerConfig) string {
	c = c.Normalized()
	c.SetLive(Live{})
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Live is the part of a WorkerConfig that a running worker takes without a
// restart: the hive's own timers of it. ConfigHash leaves it out.
type Live struct{ IdleTimeout, LoadTimeout, DrainTimeout string }

// Live returns c's live settings.
func (c WorkerConfig) Live() Live { return Live{c.IdleTimeout, c.LoadTimeout, c.DrainTimeout} }

// SetLive sets c's live settings to l.
func (c *WorkerConfig) SetLive(l Live) {
	c.IdleTimeout, c.LoadTimeout, c.DrainTimeout = l.IdleTimeout, l.LoadTimeout, l.DrainTimeout
}

// Worker states reported in WorkerStatus.State.
const (
	StateStarting   = "starting"   // process being spawned
	StateLoading    = "loading"    // process up, model loading (not ready yet)
	StateIdle       = "idle"       // ready, no request in flight
	StateBusy       = "busy"       // ready, serving requests
	StateRestarting = "restarting" // crashed; waiting for the backoff to restart it
	StateFailed     = "failed"     // crash loop or load failure; no longer restarted
	StateStopped    = "stopped"    // stopped by the idle timeout; a PUT starts it again
	StateStopping   = "stopping"   // being stopped
	StateDraining   = "draining"   // being stopped: new requests refused, running ones finishing
)

// Ready reports whether a worker in state s can take requests.
func Ready(s string) bool { return s == StateIdle || s == StateBusy }

// WorkerStatus is what the hive knows about one worker it is meant to run.
type WorkerStatus struct {
	ID         string       `json:"id"`
	Model      string       `json:"model"`
	Pool       string       `json:"pool,omitempty"`
	PID        int          `json:"pid"`
	Port       int          `json:"port"`
	URL        string       `json:"url"`
	State      string       `json:"state"`
	Restarts   int          `json:"restarts"`
	ConfigHash string       `json:"config_hash"`
	LastError  string       `json:"last_error,omitempty"`
	StartedAt  time.Time    `json:"started_at,omitzero"`
	SlotsTotal int          `json:"slots_total"`
	SlotsFree  int          `json:"slots_free"`
	Config     WorkerConfig `json:"config"`
	// Runtime is what the worker reported it computes with when it last
	// became ready (backend, CPU library, GPU and offloaded layers).
	Runtime workerapi.Runtime `json:"runtime,omitzero"`
}

// GPU is one accelerator visible on the node.
type GPU struct {
	Index     int    `json:"index"`
	Name      string `json:"name"`
	Backend   string `json:"backend"` // cuda | metal
	VRAMTotal int64  `json:"vram_total_bytes"`
	VRAMFree  int64  `json:"vram_free_bytes"`
}

// Resources is what the node has.
type Resources struct {
	RAMTotal     int64    `json:"ram_total_bytes"`
	RAMAvailable int64    `json:"ram_available_bytes"`
	DiskFree     int64    `json:"disk_free_bytes"` // free space of the data dir
	CPUCount     int      `json:"cpu_count"`
	CPUFeatures  []string `json:"cpu_features"`
	// CPUVariant is the ggml CPU library a worker here loads (icelake,
	// haswell, …) from its library folder, or builtin-<level> for the
	// kernels compiled into the binary.
	CPUVariant string `json:"cpu_variant"`
	// CUDALibrary is the ggml CUDA library in the library folder
	// (libggml-cuda.so; just build-cuda makes it), empty when there is none:
	// without it no worker here computes on an NVIDIA GPU.
	CUDALibrary string   `json:"cuda_library,omitempty"`
	GPUs        []GPU    `json:"gpus"`
	Backends    []string `json:"backends"` // backends workers can use here
	// MemoryBandwidth is the node's memory read bandwidth in bytes per
	// second, measured once when the hive starts (0: not measured yet). A
	// decode step reads every weight once, so it bounds tokens per second.
	MemoryBandwidth int64 `json:"memory_bandwidth_bytes_per_second,omitempty"`
}

// State is the body of GET /v1/state: the live truth of one node.
type State struct {
	Version      string         `json:"version"`
	BinarySHA256 string         `json:"binary_sha256"`
	StartedAt    time.Time      `json:"started_at"`
	Resources    Resources      `json:"resources"`
	Models       []Model        `json:"models"`
	Workers      []WorkerStatus `json:"workers"`
}

// WorkerLogs is the body of GET /v1/workers/{id}/logs.
type WorkerLogs struct {
	ID    string   `json:"id"`
	Lines []string `json:"lines"`
}

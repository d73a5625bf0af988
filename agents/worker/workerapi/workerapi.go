// Package workerapi is the wire contract of the worker's HTTP API (the
// request, event and status types) and a small Go client for it, used by the
// hive and by `rbee infer`. It needs no cgo.
package workerapi

// Worker states reported by GET /v1/ready.
const (
	StateLoading  = "loading"  // the model file is being loaded; see Progress
	StateIdle     = "idle"     // loaded, no request running
	StateBusy     = "busy"     // loaded, at least one slot in use
	StateStopping = "stopping" // shutting down; no new requests
	StateDraining = "draining" // POST /v1/admin/drain: no new requests, running ones finish
)

// Codes of the 503 a worker answers when it takes no new request: a client
// may send the request to another worker.
const (
	CodeBusy         = "ALL_SLOTS_BUSY" // every slot holds a request; Retry-After says when to try again
	CodeDraining     = "DRAINING"       // finishing the requests it has before it stops
	CodeShuttingDown = "SHUTTING_DOWN"  // stopping
	CodeLoading      = "LOADING"        // the model is still loading
)

// ExitLoadFailed is the exit status of a worker whose model failed to load
// in a way that repeats on every start (missing file, not a model); it
// writes one stderr line "error: <the cause>" first. A supervisor should
// mark such a worker failed instead of restarting it.
const ExitLoadFailed = 3

// MinPort and MaxPort bound the port a worker may listen on; ports below
// MinPort are reserved for system services.
const (
	MinPort = 1024
	MaxPort = 65535
)

// Stop reasons in the end event.
const (
	StopMaxTokens = "max_tokens"
	StopEOS       = "eos"
	StopString    = "stop"
	StopCancelled = "cancelled"
	StopContext   = "context_full"
	StopError     = "error"
)

// Event types of the native SSE stream.
const (
	EventStarted = "started" // first event: the job id and slot
	EventToken   = "token"   // one generated token: T is its text, I its index
	EventEnd     = "end"     // last event before "data: [DONE]": statistics
	EventError   = "error"   // decoding failed; Code and Message say why
)

// Header names.
const (
	// HeaderJobID carries the job id of an inference response.
	HeaderJobID = "X-Job-Id"
)

// Ready is the body of GET /v1/ready (and of POST /v1/admin/drain). Ready
// is true in the idle and busy states; Progress goes from 0 to 1 while
// loading; InFlight counts the requests being served, which a draining
// worker lets finish.
type Ready struct {
	Ready        bool    `json:"ready"`
	State        string  `json:"state"`
	SlotsTotal   int     `json:"slots_total"`
	SlotsFree    int     `json:"slots_free"`
	InFlight     int     `json:"in_flight"`
	Progress     float64 `json:"progress"`
	CtxSize      int     `json:"ctx_size"`                // tokens per slot
	ChatTemplate string  `json:"chat_template,omitempty"` // the chat template in use, once loaded
	WorkerID     string  `json:"worker_id,omitempty"`
	Model        string  `json:"model,omitempty"`
	Runtime              // once loaded: what the worker computes with
}

// Runtime is what a loaded worker computes with, as it reports it in
// /v1/ready (its fields inline there) and the hive passes on per worker.
type Runtime struct {
	Backend    string `json:"backend,omitempty"`     // cpu | cuda
	CPUVariant string `json:"cpu_variant,omitempty"` // the ggml CPU library in use (icelake, haswell, builtin-x86-64-v3, …)
	// Device is the GPU the model's offloaded layers are on (cuda); 0 on the CPU.
	Device int `json:"device"`
	// OffloadedLayers counts the model's layers held and computed on the
	// GPU (the output layer counts as one); 0 on the CPU.
	OffloadedLayers int `json:"offloaded_layers"`
}

// ModelList is the body of GET /v1/models, in OpenAI's list shape.
type ModelList struct {
	Object string  `json:"object"` // "list"
	Data   []Model `json:"data"`
}

// Model is the one model a worker serves. ID, Object, Created and OwnedBy
// are OpenAI's fields; the rest are rbee's.
type Model struct {
	ID            string `json:"id"`
	Object        string `json:"object"` // "model"
	Created       int64  `json:"created"`
	OwnedBy       string `json:"owned_by"`
	ContextLength int    `json:"context_length"`                   // tokens per request (one slot)
	TrainedCtx    int    `json:"trained_context_length,omitempty"` // what the model was trained with
	SHA256        string `json:"sha256,omitempty"`                 // of the GGUF file; empty while it is hashed
	FileBytes     int64  `json:"file_bytes,omitempty"`
	ChatTemplate  string `json:"chat_template,omitempty"`
	Embeddings    bool   `json:"embeddings"` // POST /v1/embeddings is served
}

// InferenceRequest is the body of POST /v1/inference. Pointer fields are
// optional; the worker's defaults are max_tokens 256, temperature 0.8, top_p
// 0.95, top_k 40, min_p 0.05, repeat_penalty 1.0, and a random seed.
type InferenceRequest struct {
	Prompt        string   `json:"prompt"`
	MaxTokens     *int     `json:"max_tokens,omitempty"`     // 1 .. ctx_size
	Temperature   *float64 `json:"temperature,omitempty"`    // 0 .. 2; 0 (or below 1e-5) = greedy
	TopP          *float64 `json:"top_p,omitempty"`          // 0 .. 1
	TopK          *int     `json:"top_k,omitempty"`          // 0 .. vocabulary size; 0 = off
	MinP          *float64 `json:"min_p,omitempty"`          // 0 .. 1
	RepeatPenalty *float64 `json:"repeat_penalty,omitempty"` // 0.001 .. 10; 1 = off
	Seed          *int64   `json:"seed,omitempty"`           // 0 .. 4294967294
	Stop          []string `json:"stop,omitempty"`           // up to 4 strings
	IgnoreEOS     bool     `json:"ignore_eos,omitempty"`     // generate max_tokens even past end-of-text tokens
	CachePrompt   *bool    `json:"cache_prompt,omitempty"`   // false: evaluate the whole prompt, reusing no cached prefix
	JobID         string   `json:"job_id,omitempty"`         // [A-Za-z0-9._-], at most 64; generated when empty
}

// Event is one "data:" line of the native SSE stream. Which fields are set
// depends on Type.
type Event struct {
	Type  string `json:"type"`
	JobID string `json:"job_id,omitempty"` // started, end
	Slot  int    `json:"slot,omitempty"`   // started

	T string `json:"t,omitempty"` // token text (may be empty while a character is incomplete)
	I int    `json:"i,omitempty"` // token index, from 0

	TokensOut       int     `json:"tokens_out,omitempty"`     // end
	DecodeTimeMS    int64   `json:"decode_time_ms,omitempty"` // end
	PromptTokens    int     `json:"prompt_tokens,omitempty"`  // end
	PromptTimeMS    int64   `json:"prompt_time_ms,omitempty"` // end
	CachedTokens    int     `json:"cached_tokens,omitempty"`  // end: prompt tokens reused from the slot's cache
	TokensPerSecond float64 `json:"tokens_per_second,omitempty"`
	StopReason      string  `json:"stop_reason,omitempty"` // end

	Code    string `json:"code,omitempty"`    // error
	Message string `json:"message,omitempty"` // error
}

// CancelResponse is the body of DELETE /v1/inference/{id}.
type CancelResponse struct {
	JobID     string `json:"job_id"`
	Cancelled bool   `json:"cancelled"`
}

// CallbackReady is the state a worker reports in its callback once loaded.
const CallbackReady = "ready"

// Callback is what a worker POSTs to its --callback-url once it is ready.
type Callback struct {
	WorkerID string `json:"worker_id"`
	URL      string `json:"url"`
	State    string `json:"state"`
}

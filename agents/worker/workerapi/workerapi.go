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
)

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

// Ready is the body of GET /v1/ready. Ready is true in the idle and busy
// states; Progress goes from 0 to 1 while loading.
type Ready struct {
	Ready      bool    `json:"ready"`
	State      string  `json:"state"`
	SlotsTotal int     `json:"slots_total"`
	SlotsFree  int     `json:"slots_free"`
	Progress   float64 `json:"progress"`
	WorkerID   string  `json:"worker_id,omitempty"`
	Model      string  `json:"model,omitempty"`
}

// InferenceRequest is the body of POST /v1/inference. Pointer fields are
// optional; the worker's defaults are max_tokens 256, temperature 0.8, top_p
// 0.95, top_k 40, min_p 0.05, repeat_penalty 1.0, and a random seed.
type InferenceRequest struct {
	Prompt        string   `json:"prompt"`
	MaxTokens     *int     `json:"max_tokens,omitempty"`     // 1 .. ctx_size
	Temperature   *float64 `json:"temperature,omitempty"`    // 0 .. 2; 0 = greedy
	TopP          *float64 `json:"top_p,omitempty"`          // 0 .. 1
	TopK          *int     `json:"top_k,omitempty"`          // 0 .. vocabulary size; 0 = off
	MinP          *float64 `json:"min_p,omitempty"`          // 0 .. 1
	RepeatPenalty *float64 `json:"repeat_penalty,omitempty"` // > 0 .. 10; 1 = off
	Seed          *int64   `json:"seed,omitempty"`           // 0 .. 4294967294
	Stop          []string `json:"stop,omitempty"`           // up to 4 strings
	IgnoreEOS     bool     `json:"ignore_eos,omitempty"`     // generate max_tokens even past end-of-text tokens
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

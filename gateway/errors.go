package gateway

import (
	"net/http"
	"strconv"

	"github.com/rbee-dev/rbee/api"
)

// Error codes the gateway answers with.
const (
	CodeQueueFull    = "QUEUE_FULL"    // 503: the model's queue holds `queue` requests already
	CodeQueueTimeout = "QUEUE_TIMEOUT" // 504: no slot freed within queue_timeout
	CodeNoWorker     = "NO_WORKER"     // 503: the model has workers, none would take the request
	CodeUnknownModel = "model_not_found"
	CodeWorkerDied   = "WORKER_DIED" // in a stream: the worker stopped mid-answer
	CodeUnauthorized = "invalid_api_key"
)

// apiError is OpenAI's error object, with rbee's details beside it, so that
// both OpenAI clients and rbee's own (api.ReadError) understand it.
type apiError struct {
	Message string         `json:"message"`
	Type    string         `json:"type"`
	Param   *string        `json:"param"`
	Code    string         `json:"code"`
	Details map[string]any `json:"details,omitempty"`
}

// errorType is OpenAI's type for an HTTP status.
func errorType(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusNotFound:
		return "invalid_request_error"
	case status < 500:
		return "invalid_request_error"
	default:
		return "server_error"
	}
}

// writeError answers status with OpenAI's error shape.
func writeError(w http.ResponseWriter, status int, code, message string, details map[string]any) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rbee"`)
	}
	e := apiError{Message: message, Type: errorType(status), Code: code, Details: details}
	if p, ok := details["param"].(string); ok {
		e.Param = &p
	}
	api.WriteJSON(w, status, map[string]apiError{"error": e})
}

// writeRetryable answers a 503 that says when to try again.
func writeRetryable(w http.ResponseWriter, code, message string, after int, details map[string]any) {
	w.Header().Set("Retry-After", strconv.Itoa(after))
	writeError(w, http.StatusServiceUnavailable, code, message, details)
}

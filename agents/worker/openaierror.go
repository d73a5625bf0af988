package worker

import (
	"net/http"

	"github.com/rbee-dev/rbee/api"
)

// endpointInference is the native endpoint's metrics label; every other
// endpoint is OpenAI's.
const endpointInference = "inference"

// openAIError is rbee's error envelope with OpenAI's fields added, so that
// OpenAI clients read the message, the field ("param") and the kind
// ("type") where they look for them.
type openAIError struct {
	*api.Error
	Type  string  `json:"type"`
	Param *string `json:"param"`
}

// writeOpenAIError writes e as {"error":{"code","message","details","type","param"}}.
func writeOpenAIError(w http.ResponseWriter, e *api.Error) {
	status := e.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	out := openAIError{Error: e, Type: "invalid_request_error"}
	switch {
	case status == http.StatusServiceUnavailable:
		out.Type = "service_unavailable"
	case status >= 500:
		out.Type = "server_error"
	case status == http.StatusNotFound:
		out.Type = "not_found_error"
	}
	if f, ok := e.Details["field"].(string); ok {
		out.Param = &f
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rbee"`)
	}
	api.WriteJSON(w, status, map[string]openAIError{"error": out})
}

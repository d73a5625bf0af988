package api

import (
	"encoding/json"
	"net/http"
)

// SSEWriter writes a server-sent event stream ("data: …" events), flushing
// after each one so the client sees it at once.
type SSEWriter struct {
	w     http.ResponseWriter
	f     http.Flusher
	alive bool
}

// NewSSEWriter sends the event-stream headers and a 200, and returns the writer.
func NewSSEWriter(w http.ResponseWriter) *SSEWriter {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	s := &SSEWriter{w: w, f: f, alive: true}
	s.Flush()
	return s
}

// Write sends b as it is (a complete event, "data: …\n\n") and flushes; it
// reports whether the client is still there.
func (s *SSEWriter) Write(b []byte) bool {
	if !s.alive {
		return false
	}
	if _, err := s.w.Write(b); err != nil {
		s.alive = false
		return false
	}
	return s.Flush()
}

// Flush pushes what was written to the client; it reports whether the client is still there.
func (s *SSEWriter) Flush() bool {
	if s.f != nil {
		s.f.Flush()
	}
	return s.alive
}

// JSON sends one event holding v as JSON.
func (s *SSEWriter) JSON(v any) bool {
	body, err := json.Marshal(v)
	if err != nil {
		return false
	}
	b := make([]byte, 0, len(body)+8)
	b = append(b, "data: "...)
	b = append(b, body...)
	b = append(b, "\n\n"...)
	return s.Write(b)
}

// Done sends the final "data: [DONE]" event.
func (s *SSEWriter) Done() bool { return s.Write([]byte("data: [DONE]\n\n")) }

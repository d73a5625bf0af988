package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/api"
)

// HeaderWorker names, in every answer a worker gave, the worker that gave it.
const HeaderWorker = "X-Rbee-Worker"

// upstream is a request as it will be sent to workers (again on a retry).
type upstream struct {
	path   string // the worker's endpoint, the same as the gateway's
	body   []byte
	stream bool
	model  string // the name the client asked for (metrics label)
	start  time.Time
}

// result is how one attempt on a worker ended: an outcome for the client, or
// a reason to try another worker (nothing was sent to the client yet).
type result struct {
	outcome string
	retry   string
	tokens  int
}

// forward sends up to worker wk and relays its answer to the client.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, wk *worker, up upstream) result {
	s.fleet.mu.Lock()
	url, token, name := wk.url, wk.token, wk.key
	s.fleet.mu.Unlock()
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, url+up.path, bytes.NewReader(up.body))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL", err.Error(), nil)
		return result{outcome: outcomeWorkerError}
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		if r.Context().Err() != nil {
			return result{outcome: outcomeCancelled}
		}
		s.fleet.refuse(wk, stateDown)
		s.log.Info("a worker could not be reached; sending the request to another", "worker", name, "err", err)
		return result{retry: "unreachable"}
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		e := api.ReadError(resp)
		switch e.Code {
		case workerapi.CodeBusy:
			s.fleet.full(wk)
			return result{retry: "busy"}
		case workerapi.CodeDraining:
			s.fleet.refuse(wk, stateDraining)
			return result{retry: "draining"}
		case workerapi.CodeShuttingDown, workerapi.CodeLoading:
			s.fleet.refuse(wk, "")
			return result{retry: strings.ToLower(e.Code)}
		}
		w.Header().Set(HeaderWorker, name)
		writeError(w, http.StatusServiceUnavailable, e.Code, e.Message, e.Details)
		return result{outcome: outcomeWorkerError}
	}
	if up.stream && resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return s.relay(w, r, wk, name, resp, up)
	}
	return s.relayWhole(w, r, wk, name, resp)
}

// relayWhole passes a whole (not streamed) answer through. The worker writes
// it at the end, so a failure while reading it is still before the first
// byte the client sees: another worker is tried.
func (s *Server) relayWhole(w http.ResponseWriter, r *http.Request, wk *worker, name string, resp *http.Response) result {
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		if r.Context().Err() != nil {
			return result{outcome: outcomeCancelled}
		}
		s.fleet.refuse(wk, stateDown)
		return result{retry: "reset"}
	}
	copyHeaders(w, resp, name)
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
	switch {
	case resp.StatusCode/100 == 2:
		var u struct {
			Usage struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		_ = json.Unmarshal(body, &u)
		return result{outcome: outcomeOK, tokens: u.Usage.CompletionTokens}
	case resp.StatusCode/100 == 4:
		return result{outcome: outcomeRejected}
	}
	return result{outcome: outcomeWorkerError}
}

// relay passes a stream through event by event, flushing after each, and
// ends it with an error event when the worker stops before [DONE].
func (s *Server) relay(w http.ResponseWriter, r *http.Request, wk *worker, name string, resp *http.Response, up upstream) result {
	br := bufio.NewReaderSize(resp.Body, 32<<10)
	line, err := br.ReadBytes('\n')
	if err != nil && len(line) == 0 {
		if r.Context().Err() != nil {
			return result{outcome: outcomeCancelled}
		}
		s.fleet.refuse(wk, stateDown)
		return result{retry: "reset"}
	}
	copyHeaders(w, resp, name)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	tokens, used, done := 0, 0, false
	for {
		if _, werr := w.Write(line); werr != nil {
			return result{outcome: outcomeCancelled, tokens: tokens}
		}
		if data, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("data:")); ok {
			data = bytes.TrimSpace(data)
			if string(data) == "[DONE]" {
				done = true
			} else if text, n := chunkInfo(data); text {
				if tokens == 0 {
					s.metrics.ttft.WithLabelValues(up.model).Observe(time.Since(up.start).Seconds())
				}
				tokens++
			} else if n > 0 {
				used = n
			}
		}
		if len(bytes.TrimSpace(line)) == 0 {
			_ = rc.Flush()
		}
		if err != nil {
			break
		}
		line, err = br.ReadBytes('\n')
		if err != nil && len(line) == 0 {
			break
		}
	}
	_ = rc.Flush()
	if done {
		// The usage counts the tokens whose text was an incomplete
		// character, which sent no chunk.
		return result{outcome: outcomeOK, tokens: max(tokens, used)}
	}
	if r.Context().Err() != nil {
		return result{outcome: outcomeCancelled, tokens: tokens}
	}
	why := "the connection closed"
	if err != nil && !errors.Is(err, io.EOF) {
		why = err.Error()
	}
	s.log.Warn("a worker stopped mid-stream", "worker", name, "tokens_sent", tokens, "err", why)
	s.fleet.refuse(wk, stateDown)
	ev, _ := json.Marshal(map[string]apiError{"error": {
		Message: fmt.Sprintf("worker %s stopped mid-stream after %d tokens (%s); the answer is incomplete, send the request again", name, tokens, why),
		Type:    "server_error", Code: CodeWorkerDied,
		Details: map[string]any{"worker": name, "tokens_sent": tokens},
	}})
	_, _ = fmt.Fprintf(w, "data: %s\n\n", ev)
	_ = rc.Flush()
	return result{outcome: outcomeWorkerDied, tokens: tokens}
}

// chunkInfo reports whether a stream chunk carries generated text, and the
// completion tokens of its usage (the last chunk has one).
func chunkInfo(data []byte) (text bool, completionTokens int) {
	var c struct {
		Choices []struct {
			Text  string `json:"text"`
			Delta struct {
				Content string `json:"content"`
			} `json:"delta"`
		} `json:"choices"`
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if json.Unmarshal(data, &c) != nil {
		return false, 0
	}
	text = len(c.Choices) > 0 && (c.Choices[0].Text != "" || c.Choices[0].Delta.Content != "")
	return text, c.Usage.CompletionTokens
}

// copyHeaders passes the answer's content type and job id through and names
// the worker.
func copyHeaders(w http.ResponseWriter, resp *http.Response, name string) {
	for _, h := range []string{"Content-Type", "X-Job-Id", "Retry-After"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.Header().Set(HeaderWorker, name)
}

package workerapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/rbee-dev/rbee/api"
)

// Client talks to one worker. The zero HTTP field uses a client without a
// total timeout (streams can be long); cancel through the context instead.
type Client struct {
	BaseURL string       // e.g. http://127.0.0.1:8001
	Token   string       // bearer token; empty on loopback workers
	HTTP    *http.Client // nil = a default client
}

// NewClient returns a client for the worker at baseURL.
func NewClient(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token}
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	req, err := api.NewRequest(ctx, method, c.BaseURL+path, c.Token, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, fmt.Errorf("worker %s: %w", c.BaseURL, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, api.ReadError(resp)
	}
	return resp, nil
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// Ready returns GET /v1/ready.
func (c *Client) Ready(ctx context.Context) (Ready, error) {
	var r Ready
	err := c.getJSON(ctx, "/v1/ready", &r)
	return r, err
}

// Result is the outcome of a finished inference.
type Result struct {
	JobID string
	Text  string
	End   Event // the end event with the statistics
}

// Infer runs POST /v1/inference and calls fn for every event as it arrives
// (started, token, end). It returns when the stream ends with [DONE]. An error
// event becomes the returned error; so does an error from fn, which also
// closes the stream (the worker then frees the slot). Busy workers answer
// with an *api.Error whose Code is "ALL_SLOTS_BUSY".
func (c *Client) Infer(ctx context.Context, req InferenceRequest, fn func(Event) error) (Result, error) {
	resp, err := c.do(ctx, http.MethodPost, "/v1/inference", req)
	if err != nil {
		return Result{}, err
	}
	defer resp.Body.Close()
	res := Result{JobID: resp.Header.Get(HeaderJobID)}
	var text strings.Builder
	err = api.ReadSSE(resp.Body, func(data []byte) error {
		var ev Event
		if err := json.Unmarshal(data, &ev); err != nil {
			return fmt.Errorf("bad event from worker: %w", err)
		}
		switch ev.Type {
		case EventToken:
			text.WriteString(ev.T)
		case EventEnd:
			res.End = ev
		case EventError:
			return &api.Error{Status: http.StatusInternalServerError, Code: ev.Code, Message: ev.Message}
		}
		if fn != nil {
			return fn(ev)
		}
		return nil
	})
	res.Text = text.String()
	if err == nil && res.End.Type != EventEnd {
		err = errors.New("worker stream ended without an end event")
	}
	return res, err
}

// Cancel asks the worker to stop job id (DELETE /v1/inference/{id}).
func (c *Client) Cancel(ctx context.Context, jobID string) error {
	resp, err := c.do(ctx, http.MethodDelete, "/v1/inference/"+url.PathEscape(jobID), nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Drain asks the worker to refuse new requests (503 DRAINING) while the ones
// in flight finish (POST /v1/admin/drain). Poll Ready until InFlight is 0
// before stopping it.
func (c *Client) Drain(ctx context.Context) error {
	resp, err := c.do(ctx, http.MethodPost, "/v1/admin/drain", struct{}{})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

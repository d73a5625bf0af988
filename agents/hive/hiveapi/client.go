package hiveapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rbee-dev/rbee/api"
)

// Client calls one hive's HTTP API. Errors from the hive come back as
// *api.Error (code, message, details, HTTP status).
type Client struct {
	BaseURL string       // e.g. http://127.0.0.1:9200
	Token   string       // bearer token; empty for loopback hives
	HTTP    *http.Client // nil means http.DefaultClient
}

// NewClient returns a client for the hive at baseURL ("http://host:port").
func NewClient(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token}
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) newRequest(ctx context.Context, method, path string, body any) (*http.Request, error) {
	return api.NewRequest(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, c.Token, body)
}

// do sends a JSON request and decodes a 2xx JSON answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("hive %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return api.ReadError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("hive %s: decode %s %s answer: %w", c.BaseURL, method, path, err)
	}
	return nil
}

// Health calls GET /v1/health.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	err := c.do(ctx, http.MethodGet, "/v1/health", nil, &h)
	return h, err
}

// State calls GET /v1/state.
func (c *Client) State(ctx context.Context) (State, error) {
	var s State
	err := c.do(ctx, http.MethodGet, "/v1/state", nil, &s)
	return s, err
}

// PutModel provisions a model (PUT /v1/models/{name}) and returns its catalog
// entry. When progress is not nil the hive streams progress events, and
// progress is called for each one as it arrives.
func (c *Client) PutModel(ctx context.Context, name string, spec ModelSpec, progress func(Progress)) (Model, error) {
	path := "/v1/models/" + url.PathEscape(name)
	if progress == nil {
		var m Model
		err := c.do(ctx, http.MethodPut, path, spec, &m)
		return m, err
	}
	req, err := c.newRequest(ctx, http.MethodPut, path, spec)
	if err != nil {
		return Model{}, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return Model{}, fmt.Errorf("hive %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return Model{}, api.ReadError(resp)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		var m Model
		err := json.NewDecoder(resp.Body).Decode(&m)
		return m, err
	}
	var done *Model
	var final error // the stream's own verdict: a done model or an error event
	err = api.ReadSSE(resp.Body, func(data []byte) error {
		var ev Event
		if err := json.Unmarshal(data, &ev); err != nil {
			final = fmt.Errorf("hive %s: bad progress event %q: %w", c.BaseURL, data, err)
			return final
		}
		switch ev.Type {
		case EventProgress:
			progress(Progress{Bytes: ev.Bytes, Total: ev.Total, Rate: ev.Rate})
			return nil
		case EventDone:
			if done = ev.Model; done == nil {
				final = fmt.Errorf("hive %s: done event without a model", c.BaseURL)
			}
		case EventError:
			final = fmt.Errorf("hive %s: error event without an error", c.BaseURL)
			if ev.Error != nil {
				final = &api.Error{Status: ev.Error.Status, Code: ev.Error.Code, Message: ev.Error.Message, Details: ev.Error.Details}
			}
		default:
			return nil
		}
		return errStreamEnd
	})
	switch {
	case final != nil:
		return Model{}, final
	case done != nil:
		return *done, nil
	case err == nil || errors.Is(err, io.ErrUnexpectedEOF):
		return Model{}, fmt.Errorf("hive %s: progress stream ended before the download finished", c.BaseURL)
	}
	return Model{}, fmt.Errorf("hive %s: progress stream: %w", c.BaseURL, err)
}

// errStreamEnd stops reading a progress stream at its done or error event.
var errStreamEnd = errors.New("end of the progress stream")

// DeleteModel removes a model from the catalog (DELETE /v1/models/{name}).
// It fails with 409 while a worker uses the model.
func (c *Client) DeleteModel(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/models/"+url.PathEscape(name), nil, nil)
}

// PutWorker creates, keeps or replaces a worker (PUT /v1/workers/{id}). With
// wait the call returns once the worker is ready (or failed to start).
func (c *Client) PutWorker(ctx context.Context, id string, cfg WorkerConfig, wait bool) (WorkerStatus, error) {
	var st WorkerStatus
	err := c.do(ctx, http.MethodPut, "/v1/workers/"+url.PathEscape(id)+"?wait="+strconv.FormatBool(wait), cfg, &st)
	return st, err
}

// DeleteWorker stops a worker and forgets it (DELETE /v1/workers/{id}).
func (c *Client) DeleteWorker(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/workers/"+url.PathEscape(id), nil, nil)
}

// Workers lists the workers the hive is meant to run (GET /v1/workers).
func (c *Client) Workers(ctx context.Context) ([]WorkerStatus, error) {
	var ws []WorkerStatus
	err := c.do(ctx, http.MethodGet, "/v1/workers", nil, &ws)
	return ws, err
}

// WorkerLogs returns the last n lines of a worker's output (0: the hive's default).
func (c *Client) WorkerLogs(ctx context.Context, id string, n int) ([]string, error) {
	var l WorkerLogs
	path := "/v1/workers/" + url.PathEscape(id) + "/logs"
	if n > 0 {
		path += "?lines=" + strconv.Itoa(n)
	}
	err := c.do(ctx, http.MethodGet, path, nil, &l)
	return l.Lines, err
}

package infer

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/api"
)

// Gateway sends prompts through an OpenAI-compatible endpoint (rbee gateway,
// or any server with POST /v1/completions and streaming) instead of picking
// a worker from the state.
type Gateway struct {
	URL    string // base URL, e.g. http://127.0.0.1:8080
	APIKey string // sent as a bearer token when set
	// HTTP is the client; nil uses http.DefaultClient.
	HTTP *http.Client
	// StallTimeout is as for Router: how long the stream may stay quiet.
	StallTimeout time.Duration
}

// completionBody is the POST /v1/completions request.
type completionBody struct {
	Model         string         `json:"model"`
	Prompt        string         `json:"prompt"`
	MaxTokens     *int           `json:"max_tokens,omitempty"`
	Temperature   *float64       `json:"temperature,omitempty"`
	TopP          *float64       `json:"top_p,omitempty"`
	TopK          *int           `json:"top_k,omitempty"`
	Seed          *int64         `json:"seed,omitempty"`
	Stop          []string       `json:"stop,omitempty"`
	IgnoreEOS     bool           `json:"ignore_eos,omitempty"`
	Stream        bool           `json:"stream"`
	StreamOptions map[string]any `json:"stream_options,omitempty"`
}

// completionChunk is one streamed event of /v1/completions.
type completionChunk struct {
	ID      string `json:"id"`
	Choices []struct {
		Text         string  `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	Error *api.Error `json:"error"`
}

// Run streams the completion of req through the gateway to sink, as Router.Run
// does from a worker: a started event, the tokens, then an end event whose
// prompt and decode times are measured here (the OpenAI stream does not carry
// them). Closing the stream (ctx ending, a stall) ends the request at the
// gateway.
func (g *Gateway) Run(ctx context.Context, req Request, sink Sink) (Outcome, error) {
	start := time.Now()
	w := Worker{URL: strings.TrimRight(g.URL, "/"), Gateway: true}
	out := Outcome{Worker: w, Attempts: 1}
	p := req.Params
	body := completionBody{Model: req.Model, Prompt: p.Prompt, MaxTokens: p.MaxTokens, Temperature: p.Temperature,
		TopP: p.TopP, TopK: p.TopK, Seed: p.Seed, Stop: p.Stop, IgnoreEOS: p.IgnoreEOS,
		Stream: true, StreamOptions: map[string]any{"include_usage": true}}
	sctx, touch, stop := stallGuard(ctx, g.StallTimeout)
	defer stop()
	hreq, err := api.NewRequest(sctx, http.MethodPost, w.URL+"/v1/completions", g.APIKey, body)
	if err != nil {
		return out, err
	}
	hc := g.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(hreq)
	if err != nil {
		return out, g.failed(ctx, sctx, &out, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return out, fmt.Errorf("the gateway at %s refused the request: %w", w.URL, api.ReadError(resp))
	}
	var end workerapi.Event
	err = api.ReadSSE(resp.Body, func(data []byte) error {
		touch()
		return g.chunk(data, w, start, &out, &end, sink)
	})
	if err != nil {
		return out, g.failed(ctx, sctx, &out, err)
	}
	out.Total = time.Since(start)
	end.Type = workerapi.EventEnd
	end.PromptTimeMS = out.FirstToken.Milliseconds()
	end.DecodeTimeMS = (out.Total - out.FirstToken).Milliseconds()
	if end.TokensOut == 0 {
		end.TokensOut = out.Tokens
	}
	out.End = end
	return out, sink(w, end)
}

// chunk handles one event of the stream.
func (g *Gateway) chunk(data []byte, w Worker, start time.Time, out *Outcome, end *workerapi.Event, sink Sink) error {
	var c completionChunk
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("bad event from the gateway: %w", err)
	}
	if c.Error != nil {
		return c.Error
	}
	if end.JobID == "" { // the first event: the completion's id is the job's
		end.JobID = cmp.Or(c.ID, "gateway")
		out.JobID = end.JobID
		if err := sink(w, workerapi.Event{Type: workerapi.EventStarted, JobID: out.JobID}); err != nil {
			return err
		}
	}
	if c.Usage != nil {
		end.PromptTokens, end.TokensOut = c.Usage.PromptTokens, c.Usage.CompletionTokens
	}
	for _, ch := range c.Choices {
		if ch.FinishReason != nil {
			end.StopReason = stopReason(*ch.FinishReason)
		}
		if ch.Text == "" {
			continue
		}
		if out.Tokens == 0 {
			out.FirstToken = time.Since(start)
		}
		if err := sink(w, workerapi.Event{Type: workerapi.EventToken, T: ch.Text, I: out.Tokens}); err != nil {
			return err
		}
		out.Tokens++
	}
	return nil
}

// failed names what ended a request to the gateway early.
func (g *Gateway) failed(ctx, sctx context.Context, out *Outcome, err error) error {
	switch {
	case ctx.Err() != nil:
		cause := context.Cause(ctx)
		if errors.Is(cause, context.DeadlineExceeded) {
			return fmt.Errorf("the request to the gateway at %s timed out after %s. Raise --timeout or lower --max-tokens", g.URL, plural(out.Tokens, "token"))
		}
		return cause
	case errors.Is(context.Cause(sctx), errStalled):
		return &StallError{Worker: "the gateway", URL: out.Worker.URL, Tokens: out.Tokens, Timeout: g.StallTimeout}
	case api.FromServer(err):
		return fmt.Errorf("the gateway at %s: %w", out.Worker.URL, err)
	}
	if out.Tokens == 0 && refused(err) {
		return fmt.Errorf("nothing listens at the gateway address %s (is `rbee gateway` running?): %w", out.Worker.URL, err)
	}
	return fmt.Errorf("the gateway at %s stopped streaming after %s: the gateway exited or the connection to it broke (%v)", out.Worker.URL, plural(out.Tokens, "token"), err)
}

// stopReason maps OpenAI's finish_reason to the worker's stop reasons.
func stopReason(finish string) string {
	if finish == "length" {
		return workerapi.StopMaxTokens
	}
	return finish // "stop": an end-of-text token or a stop string
}

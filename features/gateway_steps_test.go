package features

// Steps of the @gateway scenarios: a local fleet of several pools, `rbee
// gateway` in the background on a free port, and clients that talk to it:
// the official OpenAI Go client, and plain HTTP for what that client hides
// (status codes, headers, the raw event stream).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cucumber/godog"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/rbee-dev/rbee/planner"
)

func init() { stepSets = append(stepSets, registerGatewaySteps) }

// gwStream is a streamed request through the gateway, read in the background.
type gwStream struct {
	mu     sync.Mutex
	status int
	worker string // X-Rbee-Worker
	body   string // the answer, when it is not a stream
	events []string
	err    error
	done   chan struct{}
}

func (s *gwStream) snapshot() (int, string, []string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status, s.worker, append([]string(nil), s.events...), s.err
}

// gatewayWorld is the scenario's gateway: its URL, the key clients send,
// its streams by name, and answers to plain requests.
type gatewayWorld struct {
	url, key string
	streams  map[string]*gwStream
	status   int
	header   http.Header
	body     string
}

func (g *gatewayWorld) client() openai.Client {
	opts := []option.RequestOption{option.WithBaseURL(g.url + "/v1/"), option.WithMaxRetries(0)}
	key := g.key
	if key == "" {
		key = "none"
	}
	return openai.NewClient(append(opts, option.WithAPIKey(key))...)
}

// post sends a JSON body to the gateway and returns the answer.
func (g *gatewayWorld) post(ctx context.Context, path, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.url+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if g.key != "" {
		req.Header.Set("Authorization", "Bearer "+g.key)
	}
	return http.DefaultClient.Do(req)
}

// stream starts a streamed completion of n tokens and reads it until it ends.
func (g *gatewayWorld) stream(model string, n int) *gwStream {
	s := &gwStream{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		body := fmt.Sprintf(`{"model":%q,"prompt":"Once upon a time","max_tokens":%d,"ignore_eos":true,"stream":true}`, model, n)
		resp, err := g.post(context.Background(), "/v1/completions", body)
		if err != nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			return
		}
		defer resp.Body.Close()
		s.mu.Lock()
		s.status, s.worker = resp.StatusCode, resp.Header.Get("X-Rbee-Worker")
		s.mu.Unlock()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			s.mu.Lock()
			s.body = string(b)
			s.mu.Unlock()
			return
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				s.mu.Lock()
				s.events = append(s.events, data)
				s.mu.Unlock()
			}
		}
	}()
	return s
}

const gatewayPool = `pool "%s" {
  model    = "tiny"
  nodes    = ["local"]
  replicas = %s
  slots    = %s
  ctx_size = %s
}
`

func registerGatewaySteps(sc *godog.ScenarioContext, w *world) {
	g := &gatewayWorld{streams: map[string]*gwStream{}}
	registerRollingSteps(sc, g)
	sc.Step(`^a local fleet file with these pools of model "tiny":$`, func(t *godog.Table) error {
		if err := w.localFleet([]string{"rbee destroy -auto-approve"}, "HIVE_PORT", "GW_PORT"); err != nil {
			return err
		}
		body := fmt.Sprintf("node \"local\" {\n  connection = \"local\"\n  hive_port  = %s\n}\nmodel \"tiny\" {\n  source = \"synth:tiny\"\n}\n", w.vars["HIVE_PORT"])
		for _, row := range t.Rows[1:] {
			c := row.Cells
			body += fmt.Sprintf(gatewayPool, c[0].Value, c[1].Value, c[2].Value, c[3].Value)
		}
		return os.WriteFile(filepath.Join(w.dir, "rbee.hcl"), []byte(body), 0o644)
	})
	sc.Step(`^the gateway runs(?: with "([^"]*)")?$`, func(args string) error {
		if _, err := w.startBackground("gateway", "rbee gateway --listen 127.0.0.1:${GW_PORT} "+args); err != nil {
			return err
		}
		g.url = "http://127.0.0.1:" + w.vars["GW_PORT"]
		return g.waitAllReady(w)
	})
	sc.Step(`^the daemon serves the gateway$`, func() error {
		g.url = "http://127.0.0.1:" + w.vars["WATCH_PORT"]
		return g.waitAllReady(w)
	})
	sc.Step(`^clients send the API key "([^"]*)"$`, func(key string) error { g.key = key; return nil })
	sc.Step(`^the gateway output contains "((?:[^"\\]|\\.)*)"$`, func(want string) error {
		p, err := w.proc("gateway")
		if err != nil {
			return err
		}
		return eventually(10*time.Second, func() error {
			if !strings.Contains(p.out.String(), unquote(want)) {
				return fmt.Errorf("the gateway's output lacks %q:\n%s", unquote(want), tail(p.out.String(), 20))
			}
			return nil
		})
	})
	sc.Step(`^the gateway output does not contain "((?:[^"\\]|\\.)*)"$`, func(want string) error {
		p, err := w.proc("gateway")
		if err != nil {
			return err
		}
		if strings.Contains(p.out.String(), unquote(want)) {
			return fmt.Errorf("the gateway's output contains %q", unquote(want))
		}
		return nil
	})

	sc.Step(`^the OpenAI client lists these models:$`, func(t *godog.Table) error { return g.checkModels(t) })
	sc.Step(`^the OpenAI client streams a chat completion of (\d+) tokens from "([^"]*)"$`, func(n int, model string) error {
		return g.chatStream(model, n)
	})
	sc.Step(`^the OpenAI client streams a completion of (\d+) tokens from "([^"]*)"$`, func(n int, model string) error {
		return g.completionStream(model, n)
	})
	sc.Step(`^the OpenAI client gets a chat completion from "([^"]*)"$`, func(model string) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cl := g.client()
		res, err := cl.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hello")}, MaxTokens: openai.Int(4),
		})
		if err != nil {
			return err
		}
		if len(res.Choices) != 1 || res.Usage.CompletionTokens == 0 {
			return fmt.Errorf("chat completion without text: %s", res.RawJSON())
		}
		return nil
	})
	sc.Step(`^(\d+) OpenAI clients at once each stream a completion of (\d+) tokens from "([^"]*)"$`, func(clients, n int, model string) error {
		errs := make(chan error, clients)
		for range clients {
			go func() { errs <- g.completionStream(model, n) }()
		}
		var all []error
		for range clients {
			all = append(all, <-errs)
		}
		return errors.Join(all...)
	})
	sc.Step(`^the gateway metrics show requests to "([^"]*)" that waited in the queue$`, func(model string) error {
		return g.checkQueued(model)
	})
	sc.Step(`^the gateway metrics contain "((?:[^"\\]|\\.)*)"$`, func(want string) error {
		return eventually(5*time.Second, func() error {
			out, err := g.get("/metrics")
			if err != nil {
				return err
			}
			if !strings.Contains(out, unquote(want)) {
				return fmt.Errorf("/metrics lacks %q", unquote(want))
			}
			return nil
		})
	})

	sc.Step(`^I start a stream of (\d+) tokens from "([^"]*)" through the gateway as "([^"]*)"$`, func(n int, model, name string) error {
		g.streams[name] = g.stream(model, n)
		return nil
	})
	sc.Step(`^stream "([^"]*)" has had a token$`, func(name string) error { return g.hasToken(name) })
	sc.Step(`^stream "([^"]*)" ends with \[DONE\]$`, func(name string) error { return g.ended(name, "[DONE]") })
	sc.Step(`^stream "([^"]*)" ends with an error event that contains "((?:[^"\\]|\\.)*)"$`, func(name, want string) error {
		return g.ended(name, unquote(want))
	})
	sc.Step(`^stream "([^"]*)" is answered (\d+) with code "([^"]*)"$`, func(name string, status int, code string) error {
		s := g.streams[name]
		if s == nil {
			return fmt.Errorf("no stream %q", name)
		}
		select {
		case <-s.done:
		case <-time.After(time.Minute):
			return fmt.Errorf("stream %s still waits", name)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.status != status {
			return fmt.Errorf("stream %s was answered %d, want %d: %s", name, s.status, status, s.body)
		}
		return checkOpenAIError(s.body, code)
	})
	sc.Step(`^I kill -9 the worker that serves stream "([^"]*)"$`, func(name string) error { return g.killServer(w, name) })
	sc.Step(`^a completion request to "([^"]*)" through the gateway answers (\d+)(?: with code "([^"]*)")?$`, func(model string, status int, code string) error {
		return g.request(model, status, code)
	})
	sc.Step(`^the answer has the header "([^"]*)"$`, func(h string) error {
		if g.header.Get(h) == "" {
			return fmt.Errorf("the answer has no %s header: %v", h, g.header)
		}
		return nil
	})
	sc.Step(`^the answer is an OpenAI error with code "([^"]*)"$`, func(code string) error { return checkOpenAIError(g.body, code) })
	sc.Step(`^GET "([^"]*)" of the gateway answers (\d+)$`, func(path string, status int) error {
		req, _ := http.NewRequest(http.MethodGet, g.url+path, nil)
		if g.key != "" {
			req.Header.Set("Authorization", "Bearer "+g.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		g.status, g.header, g.body = resp.StatusCode, resp.Header, string(b)
		if resp.StatusCode != status {
			return fmt.Errorf("GET %s answered %d, want %d: %s", path, resp.StatusCode, status, b)
		}
		return nil
	})
}

// waitAllReady waits until the gateway answers and sees every worker of the
// state ready.
func (g *gatewayWorld) waitAllReady(w *world) error {
	return eventually(2*time.Minute, func() error {
		if p, err := w.proc("gateway"); err == nil {
			select {
			case <-p.done:
				return backoffStop{fmt.Errorf("the gateway exited:\n%s", tail(p.out.String(), 20))}
			default:
			}
		}
		list, err := g.models()
		if err != nil {
			return err
		}
		if len(list) == 0 {
			return errors.New("the gateway lists no model yet")
		}
		for _, m := range list {
			if m.ReadyWorkers != m.Workers {
				return fmt.Errorf("%s has %d of %d workers ready", m.ID, m.ReadyWorkers, m.Workers)
			}
		}
		return nil
	})
}

type gwModel struct {
	ID           string `json:"id"`
	Kind         string `json:"kind"`
	ReadyWorkers int    `json:"ready_workers"`
	Workers      int    `json:"workers"`
}

// models lists GET /v1/models through the OpenAI client, with rbee's fields.
func (g *gatewayWorld) models() ([]gwModel, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl := g.client()
	page, err := cl.Models.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []gwModel
	for _, m := range page.Data {
		var gm gwModel
		if err := json.Unmarshal([]byte(m.RawJSON()), &gm); err != nil {
			return nil, err
		}
		if gm.ID != m.ID || m.Object != "model" {
			return nil, fmt.Errorf("the OpenAI client read %q as %q", m.RawJSON(), m.ID)
		}
		out = append(out, gm)
	}
	return out, nil
}

func (g *gatewayWorld) checkModels(t *godog.Table) error {
	list, err := g.models()
	if err != nil {
		return err
	}
	var got, want []string
	for _, m := range list {
		got = append(got, fmt.Sprintf("%s %s %d/%d", m.ID, m.Kind, m.ReadyWorkers, m.Workers))
	}
	for _, row := range t.Rows[1:] {
		c := row.Cells
		want = append(want, fmt.Sprintf("%s %s %s/%s", c[0].Value, c[1].Value, c[2].Value, c[3].Value))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		return fmt.Errorf("the models are\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	return nil
}

func (g *gatewayWorld) chatStream(model string, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := g.client()
	st := cl.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model: model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Tell me a story")}, MaxTokens: openai.Int(int64(n)),
	}, option.WithJSONSet("ignore_eos", true))
	tokens, used, finish := 0, int64(0), ""
	for st.Next() {
		ch := st.Current()
		used = max(used, ch.Usage.CompletionTokens)
		if len(ch.Choices) > 0 {
			if ch.Choices[0].Delta.Content != "" {
				tokens++
			}
			if ch.Choices[0].FinishReason != "" {
				finish = ch.Choices[0].FinishReason
			}
		}
	}
	if err := st.Err(); err != nil {
		return fmt.Errorf("chat stream from %s: %w", model, err)
	}
	// A token whose text is an incomplete character sends no chunk: the
	// usage counts them all.
	if tokens == 0 || used != int64(n) || finish != "length" {
		return fmt.Errorf("chat stream from %s: %d chunks, %d tokens, finish %q; want %d tokens and \"length\"", model, tokens, used, finish, n)
	}
	return nil
}

func (g *gatewayWorld) completionStream(model string, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl := g.client()
	st := cl.Completions.NewStreaming(ctx, openai.CompletionNewParams{
		Model: openai.CompletionNewParamsModel(model), Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")},
		MaxTokens: openai.Int(int64(n)),
	}, option.WithJSONSet("ignore_eos", true))
	tokens, used := 0, int64(0)
	for st.Next() {
		ch := st.Current()
		used = max(used, ch.Usage.CompletionTokens)
		if len(ch.Choices) > 0 && ch.Choices[0].Text != "" {
			tokens++
		}
	}
	if err := st.Err(); err != nil {
		return fmt.Errorf("completion stream from %s: %w", model, err)
	}
	if tokens == 0 || used != int64(n) {
		return fmt.Errorf("completion stream from %s: %d chunks, %d tokens; want %d tokens", model, tokens, used, n)
	}
	return nil
}

func (g *gatewayWorld) get(path string) (string, error) {
	req, _ := http.NewRequest(http.MethodGet, g.url+path, nil)
	if g.key != "" {
		req.Header.Set("Authorization", "Bearer "+g.key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// checkQueued reads the queue wait histogram: some requests waited longer
// than its first bucket (1 ms), which only the queue makes them do.
func (g *gatewayWorld) checkQueued(model string) error {
	out, err := g.get("/metrics")
	if err != nil {
		return err
	}
	num := func(pattern string) float64 {
		m := regexp.MustCompile(regexp.QuoteMeta(pattern) + ` (\S+)`).FindStringSubmatch(out)
		if m == nil {
			return -1
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	count := num(fmt.Sprintf(`rbee_gateway_queue_wait_seconds_count{model=%q}`, model))
	first := num(fmt.Sprintf(`rbee_gateway_queue_wait_seconds_bucket{model=%q,le="0.001"}`, model))
	if count <= 0 || first < 0 || count-first < 1 {
		return fmt.Errorf("no request to %s waited in the queue (%v requests, %v within 1 ms)", model, count, first)
	}
	return nil
}

func (g *gatewayWorld) hasToken(name string) error {
	s := g.streams[name]
	if s == nil {
		return fmt.Errorf("no stream %q", name)
	}
	return eventually(2*time.Minute, func() error {
		status, _, events, err := s.snapshot()
		if err != nil {
			return backoffStop{err}
		}
		for _, e := range events {
			if strings.Contains(e, `"text":"`) && !strings.Contains(e, `"text":""`) {
				return nil
			}
		}
		select {
		case <-s.done:
			return backoffStop{fmt.Errorf("stream %s ended (status %d) before a token: %v", name, status, events)}
		default:
		}
		return errors.New("no token yet")
	})
}

func (g *gatewayWorld) ended(name, last string) error {
	s := g.streams[name]
	if s == nil {
		return fmt.Errorf("no stream %q", name)
	}
	select {
	case <-s.done:
	case <-time.After(3 * time.Minute):
		return fmt.Errorf("stream %s still runs", name)
	}
	status, _, events, err := s.snapshot()
	if err != nil {
		return err
	}
	if status != http.StatusOK || len(events) == 0 || !strings.Contains(events[len(events)-1], last) {
		return fmt.Errorf("stream %s (status %d) does not end with %q: %v", name, status, last, events[max(0, len(events)-3):])
	}
	return nil
}

var workerKeyRe = regexp.MustCompile(`^worker\.([^\[]+)\[[^/]+/(\d+)\]$`)

// killServer sends SIGKILL to the worker process that serves a stream.
func (g *gatewayWorld) killServer(w *world, name string) error {
	s := g.streams[name]
	if s == nil {
		return fmt.Errorf("no stream %q", name)
	}
	_, key, _, _ := s.snapshot()
	m := workerKeyRe.FindStringSubmatch(key)
	if m == nil {
		return fmt.Errorf("stream %s names no worker (%q)", name, key)
	}
	idx, _ := strconv.Atoi(m[2])
	ws, _, err := w.liveWorker(planner.WorkerID(m[1], idx))
	if err != nil {
		return err
	}
	return killAndWait(ws.PID, 10*time.Second)
}

// request sends a small completion and checks the answer's status and code.
func (g *gatewayWorld) request(model string, status int, code string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := g.post(ctx, "/v1/completions", fmt.Sprintf(`{"model":%q,"prompt":"hi","max_tokens":2}`, model))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	g.status, g.header, g.body = resp.StatusCode, resp.Header, string(b)
	if resp.StatusCode != status {
		return fmt.Errorf("answered %d, want %d: %s", resp.StatusCode, status, b)
	}
	if code != "" {
		return checkOpenAIError(g.body, code)
	}
	return nil
}

// checkOpenAIError checks that body is OpenAI's error object with code.
func checkOpenAIError(body, code string) error {
	var e struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code != code || e.Error.Message == "" || e.Error.Type == "" {
		return fmt.Errorf("not an OpenAI error with code %s: %s", code, body)
	}
	return nil
}

package features

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cucumber/godog"

	"github.com/rbee-dev/rbee/internal/testsshd"
)

func init() { stepSets = append(stepSets, registerWorkerSteps) }

var (
	tinyModelOnce sync.Once
	tinyModelPath string
	tinyModelErr  error
)

// tinyWorkerModel generates the tiny model once per test run.
func tinyWorkerModel() (string, error) {
	tinyModelOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rbee-worker-model")
		if err != nil {
			tinyModelErr = err
			return
		}
		tinyModelPath = filepath.Join(dir, "tiny.gguf")
		out, err := exec.Command(rbeeBin, "model", "synth", "--preset", "tiny", "--out", tinyModelPath).CombinedOutput()
		if err != nil {
			tinyModelErr = fmt.Errorf("rbee model synth: %v\n%s", err, out)
		}
	})
	return tinyModelPath, tinyModelErr
}

// httpResult is the last HTTP exchange with the worker.
type httpResult struct {
	status int
	header http.Header
	body   []byte
	events [][]byte // SSE data payloads, [DONE] excluded
}

// liveStream is an SSE response read in the background.
type liveStream struct {
	mu     sync.Mutex
	events [][]byte
	done   chan struct{}
	err    error
	cancel context.CancelFunc
}

func (s *liveStream) snapshot() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.events...)
}

type workerWorld struct {
	w         *world
	url       string
	token     string // the token a "ready worker" waits with
	last      httpResult
	plainText string
	streams   map[string]*liveStream
	callbacks chan []byte
	fuzz      map[int]int
}

func registerWorkerSteps(sc *godog.ScenarioContext, w *world) {
	ww := &workerWorld{w: w, streams: map[string]*liveStream{}}
	sc.After(func(ctx context.Context, _ *godog.Scenario, err error) (context.Context, error) {
		for _, s := range ww.streams {
			s.cancel()
		}
		return ctx, nil
	})
	registerWorkerOpenAISteps(sc, ww)

	sc.Step(`^the tiny worker model$`, func() error {
		src, err := tinyWorkerModel()
		if err != nil {
			return err
		}
		return os.Symlink(src, filepath.Join(w.dir, "tiny.gguf"))
	})
	sc.Step(`^a worker on the tiny model(?: with "([^"]*)")?$`, func(args string) error { return ww.start("tiny.gguf", args, false) })
	sc.Step(`^a ready worker on the tiny model(?: with "([^"]*)")?$`, func(args string) error { return ww.start("tiny.gguf", args, true) })
	sc.Step(`^the worker becomes ready$`, func() error { return ww.waitReady() })
	sc.Step(`^a token file "([^"]*)" holding "([^"]*)"$`, func(name, tok string) error {
		ww.token = tok
		return os.WriteFile(filepath.Join(w.dir, name), []byte(tok+"\n"), 0o600)
	})

	sc.Step(`^I (GET|DELETE|PUT) "([^"]*)" (?:from|on) the worker$`, func(method, path string) error {
		return ww.do(method, path, nil, "")
	})
	sc.Step(`^I GET "([^"]*)" from the worker with the token "([^"]*)"$`, func(path, tok string) error {
		return ww.do(http.MethodGet, path, nil, tok)
	})
	sc.Step(`^I POST to "([^"]*)" on the worker:$`, func(path string, body *godog.DocString) error {
		return ww.do(http.MethodPost, path, []byte(w.expand(body.Content)), "")
	})
	sc.Step(`^I POST an empty body to "([^"]*)" on the worker$`, func(path string) error {
		return ww.do(http.MethodPost, path, []byte{}, "")
	})
	sc.Step(`^I POST a prompt of (\d+) MiB to "([^"]*)" on the worker$`, func(mib int, path string) error {
		body := `{"prompt":"` + strings.Repeat("a", mib<<20) + `"}`
		return ww.do(http.MethodPost, path, []byte(body), "")
	})
	sc.Step(`^I POST to "([^"]*)" on the worker with a (\d+)-character piece of "([^"]*)" as stop string and:$`,
		func(path string, n int, text string, body *godog.DocString) error {
			// The piece starts after the first two characters and avoids
			// replacement and control characters, which a random model emits.
			r := []rune(w.expand(text))
			stop := ""
			for i := 2; i+n <= len(r) && stop == ""; i++ {
				ok := true
				for _, c := range r[i : i+n] {
					ok = ok && c != utf8.RuneError && unicode.IsPrint(c)
				}
				if ok {
					stop = string(r[i : i+n])
				}
			}
			if stop == "" {
				return fmt.Errorf("no clean %d-character piece in %q", n, string(r))
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(body.Content), &m); err != nil {
				return err
			}
			w.vars["STOP"] = stop
			m["stop"] = []string{stop}
			b, _ := json.Marshal(m)
			return ww.do(http.MethodPost, path, b, "")
		})

	sc.Step(`^the response status is (\d+)$`, func(code int) error {
		if ww.last.status != code {
			return fmt.Errorf("status %d, want %d; body:\n%s", ww.last.status, code, tail(string(ww.last.body), 20))
		}
		return nil
	})
	sc.Step(`^the response header "([^"]*)" (is|contains) "([^"]*)"$`, func(name, how, want string) error {
		got := ww.last.header.Get(name)
		if (how == "is" && got != want) || (how == "contains" && !strings.Contains(got, want)) {
			return fmt.Errorf("header %s = %q, want it to %s %q", name, got, how, want)
		}
		return nil
	})
	sc.Step(`^the response body contains "((?:[^"\\]|\\.)*)"$`, func(want string) error {
		want = unquote(want)
		if !bytes.Contains(ww.last.body, []byte(want)) {
			return fmt.Errorf("body does not contain %q:\n%s", want, tail(string(ww.last.body), 60))
		}
		return nil
	})
	jsonValue := func(path string) (any, error) {
		var v any
		if err := json.Unmarshal(ww.last.body, &v); err != nil {
			return nil, fmt.Errorf("response is not JSON (%v):\n%s", err, tail(string(ww.last.body), 20))
		}
		return jsonPath(v, path)
	}
	sc.Step(`^the response JSON "([^"]*)" is "([^"]*)"$`, func(path, want string) error {
		got, err := jsonValue(path)
		if err != nil {
			return err
		}
		if s, ok := got.(string); !ok || s != w.expand(want) {
			return fmt.Errorf("%s = %#v, want %q; body: %s", path, got, want, ww.last.body)
		}
		return nil
	})
	sc.Step(`^the response JSON "([^"]*)" is (-?[0-9.]+|true|false)$`, func(path, want string) error {
		got, err := jsonValue(path)
		if err != nil {
			return err
		}
		if fmt.Sprint(got) != want {
			return fmt.Errorf("%s = %#v, want %s; body: %s", path, got, want, ww.last.body)
		}
		return nil
	})
	sc.Step(`^the response JSON "([^"]*)" is a (non-empty )?string$`, func(path, nonEmpty string) error {
		got, err := jsonValue(path)
		if err != nil {
			return err
		}
		if s, ok := got.(string); !ok || (nonEmpty != "" && s == "") {
			return fmt.Errorf("%s = %#v, want a %sstring", path, got, nonEmpty)
		}
		return nil
	})
	sc.Step(`^the response JSON "([^"]*)" matches "([^"]*)"$`, func(path, pattern string) error {
		got, err := jsonValue(path)
		if err != nil {
			return err
		}
		if s, ok := got.(string); !ok || !regexp.MustCompile(pattern).MatchString(s) {
			return fmt.Errorf("%s = %#v, want a match of %q", path, got, pattern)
		}
		return nil
	})
	sc.Step(`^the response JSON "([^"]*)" is the sum of "([^"]*)" and "([^"]*)"$`, func(sum, a, b string) error {
		vs, err1 := jsonValue(sum)
		va, err2 := jsonValue(a)
		vb, err3 := jsonValue(b)
		if err := errors.Join(err1, err2, err3); err != nil {
			return err
		}
		if vs.(float64) != va.(float64)+vb.(float64) {
			return fmt.Errorf("%s = %v, %s + %s = %v", sum, vs, a, b, va.(float64)+vb.(float64))
		}
		return nil
	})

	// Native SSE streams.
	sc.Step(`^the stream ends with "data: \[DONE\]"$`, func() error {
		if !bytes.HasSuffix(ww.last.body, []byte("data: [DONE]\n\n")) {
			return fmt.Errorf("stream does not end with data: [DONE]:\n%s", tail(string(ww.last.body), 6))
		}
		return nil
	})
	sc.Step(`^the first event is "([^"]*)" with "([^"]*)" "([^"]*)"$`, func(typ, key, want string) error {
		if len(ww.last.events) == 0 {
			return fmt.Errorf("no events:\n%s", ww.last.body)
		}
		ev := ww.last.events[0]
		if err := eventField(ev, "type", typ); err != nil {
			return err
		}
		return eventField(ev, key, want)
	})
	sc.Step(`^the end event has "([^"]*)" "?([^"]*)"?$`, func(key, want string) error {
		ev, err := findEvent(ww.last.events, "end")
		if err != nil {
			return fmt.Errorf("%w:\n%s", err, tail(string(ww.last.body), 10))
		}
		return eventField(ev, key, want)
	})
	sc.Step(`^the stream has (\d+) "([^"]*)" events$`, func(n int, typ string) error {
		if got := countEvents(ww.last.events, typ); got != n {
			return fmt.Errorf("%d %q events, want %d", got, typ, n)
		}
		return nil
	})
	sc.Step(`^I remember the streamed text as "([^"]*)"$`, func(name string) error {
		w.vars[name] = streamedText(ww.last.events)
		return nil
	})
	sc.Step(`^the streamed text is "([^"]*)"$`, func(want string) error {
		if got := streamedText(ww.last.events); got != w.expand(want) {
			return fmt.Errorf("streamed %q, want %q", got, w.expand(want))
		}
		return nil
	})
	sc.Step(`^the streamed text is what precedes the stop string in "([^"]*)"$`, func(text string) error {
		full := w.expand(text)
		want := full[:strings.Index(full, w.vars["STOP"])]
		if got := streamedText(ww.last.events); got != want {
			return fmt.Errorf("streamed %q, want %q (stop %q)", got, want, w.vars["STOP"])
		}
		return nil
	})

	// Streams read in the background.
	sc.Step(`^I start streaming to "([^"]*)" on the worker as "([^"]*)":$`, func(path, name string, body *godog.DocString) error {
		return ww.startStream(name, path, []byte(w.expand(body.Content)))
	})
	sc.Step(`^the stream "([^"]*)" has received (\d+) token events$`, func(name string, n int) error {
		s, ok := ww.streams[name]
		if !ok {
			return fmt.Errorf("no stream %q", name)
		}
		return eventually(60*time.Second, func() error {
			if got := countEvents(s.snapshot(), "token"); got < n {
				select {
				case <-s.done:
					return fmt.Errorf("stream ended after %d token events (err %v)", got, s.err)
				default:
				}
				return fmt.Errorf("%d token events so far", got)
			}
			return nil
		})
	})
	sc.Step(`^the stream "([^"]*)" ends with "([^"]*)" "([^"]*)"$`, func(name, key, want string) error {
		s, ok := ww.streams[name]
		if !ok {
			return fmt.Errorf("no stream %q", name)
		}
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			return fmt.Errorf("stream %q did not end", name)
		}
		ev, err := findEvent(s.snapshot(), "end")
		if err != nil {
			return fmt.Errorf("stream %q: %w (err %v)", name, err, s.err)
		}
		return eventField(ev, key, want)
	})
	sc.Step(`^I close the stream "([^"]*)"$`, func(name string) error {
		s, ok := ww.streams[name]
		if !ok {
			return fmt.Errorf("no stream %q", name)
		}
		s.cancel()
		<-s.done
		return nil
	})
	sc.Step(`^the worker reports (\d+) of (\d+) slots free$`, func(free, total int) error {
		return eventually(10*time.Second, func() error {
			if err := ww.do(http.MethodGet, "/v1/ready", nil, ww.token); err != nil {
				return err
			}
			var r struct {
				SlotsTotal int `json:"slots_total"`
				SlotsFree  int `json:"slots_free"`
			}
			if err := json.Unmarshal(ww.last.body, &r); err != nil {
				return err
			}
			if r.SlotsFree != free || r.SlotsTotal != total {
				return fmt.Errorf("%d of %d slots free, want %d of %d", r.SlotsFree, r.SlotsTotal, free, total)
			}
			return nil
		})
	})

	// OpenAI streams.
	sc.Step(`^every event is a JSON object with "([^"]*)" "([^"]*)"$`, func(key, want string) error {
		if len(ww.last.events) == 0 {
			return fmt.Errorf("no events:\n%s", ww.last.body)
		}
		for i, ev := range ww.last.events {
			if err := eventField(ev, key, want); err != nil {
				return fmt.Errorf("event %d: %w", i, err)
			}
		}
		return nil
	})
	sc.Step(`^the (first|last) event has "([^"]*)" "?([^"]*)"?$`, func(which, key, want string) error {
		if len(ww.last.events) == 0 {
			return fmt.Errorf("no events:\n%s", ww.last.body)
		}
		ev := ww.last.events[0]
		if which == "last" {
			ev = ww.last.events[len(ww.last.events)-1]
		}
		return eventField(ev, key, want)
	})
	sc.Step(`^the streamed OpenAI text equals the text of the plain completion$`, func() error {
		var b strings.Builder
		for _, ev := range ww.last.events {
			var v any
			_ = json.Unmarshal(ev, &v)
			if t, err := jsonPath(v, "choices.0.text"); err == nil {
				b.WriteString(t.(string))
			}
		}
		if b.String() != ww.plainText {
			return fmt.Errorf("streamed %q, plain %q", b.String(), ww.plainText)
		}
		return nil
	})

	// Processes and hooks.
	sc.Step(`^the output of the worker does not contain "([^"]*)"$`, func(s string) error {
		p, err := w.proc("worker")
		if err != nil {
			return err
		}
		if strings.Contains(p.out.String(), s) {
			return fmt.Errorf("the worker's output contains %q", s)
		}
		return nil
	})
	sc.Step(`^I send SIGTERM to the worker$`, func() error {
		p, err := w.proc("worker")
		if err != nil {
			return err
		}
		return p.cmd.Process.Signal(syscall.SIGTERM)
	})
	sc.Step(`^the worker exits with code (\d+)$`, func(code int) error {
		p, err := w.proc("worker")
		if err != nil {
			return err
		}
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			return errors.New("the worker did not exit")
		}
		if got := p.cmd.ProcessState.ExitCode(); got != code {
			return fmt.Errorf("exit code %d, want %d; output:\n%s", got, code, tail(p.out.String(), 20))
		}
		return nil
	})
	sc.Step(`^the worker process has "([^"]*)" in its environment$`, func(kv string) error {
		p, err := w.proc("worker")
		if err != nil {
			return err
		}
		return hasEnv(p.cmd.Process.Pid, kv)
	})
	sc.Step(`^the worker's output contains "([^"]*)"$`, func(want string) error {
		p, err := w.proc("worker")
		if err != nil {
			return err
		}
		if out := p.out.String(); !strings.Contains(out, want) {
			return fmt.Errorf("the worker's output lacks %q:\n%s", want, tail(out, 20))
		}
		return nil
	})
	sc.Step(`^the worker is still running$`, func() error {
		p, err := w.proc("worker")
		if err != nil {
			return err
		}
		select {
		case <-p.done:
			return fmt.Errorf("the worker exited:\n%s", tail(p.out.String(), 30))
		default:
			return nil
		}
	})
	sc.Step(`^a callback receiver$`, func() error { return ww.startCallbackReceiver() })
	sc.Step(`^the callback receiver gets \{"worker_id": "([^"]*)", "state": "([^"]*)"\} with the worker's URL$`, func(id, state string) error {
		select {
		case body := <-ww.callbacks:
			var cb map[string]string
			if err := json.Unmarshal(body, &cb); err != nil {
				return err
			}
			if cb["worker_id"] != id || cb["state"] != state || cb["url"] != ww.url {
				return fmt.Errorf("callback %s, want worker_id %s, state %s, url %s", body, id, state, ww.url)
			}
			return nil
		case <-time.After(30 * time.Second):
			return errors.New("no callback arrived")
		}
	})
	sc.Step(`^I send (\d+) random requests to the worker$`, func(n int) error { return ww.fuzzRequests(n) })
	sc.Step(`^no response had status 500 or above except 503$`, func() error {
		for code, n := range ww.fuzz {
			if code >= 500 && code != 503 {
				return fmt.Errorf("%d responses with status %d (all: %v)", n, code, ww.fuzz)
			}
		}
		return nil
	})
}

// start runs `rbee worker --model model` on a free port in the background.
func (ww *workerWorld) start(model, args string, ready bool) error {
	port, err := testsshd.FreePort("127.0.0.1")
	if err != nil {
		return err
	}
	ww.w.vars["PORT"] = strconv.Itoa(port)
	ww.url = "http://127.0.0.1:" + strconv.Itoa(port)
	line := fmt.Sprintf("exec rbee worker --model %s --port %d %s", model, port, ww.w.expand(args))
	p, err := ww.w.startBackground("worker", line)
	if err != nil {
		return err
	}
	err = eventually(30*time.Second, func() error {
		select {
		case <-p.done:
			return fmt.Errorf("the worker exited:\n%s", tail(p.out.String(), 30))
		default:
		}
		resp, err := http.Get(ww.url + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	if err != nil || !ready {
		return err
	}
	return ww.waitReady()
}

func (ww *workerWorld) waitReady() error {
	return eventually(60*time.Second, func() error {
		if err := ww.do(http.MethodGet, "/v1/ready", nil, ww.token); err != nil {
			return err
		}
		if !bytes.Contains(ww.last.body, []byte(`"ready":true`)) {
			return fmt.Errorf("not ready: %s", ww.last.body)
		}
		return nil
	})
}

func (ww *workerWorld) request(ctx context.Context, method, path string, body []byte, token string) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, ww.url+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, nil
}

// do runs one request to completion and records the result.
func (ww *workerWorld) do(method, path string, body []byte, token string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := ww.request(ctx, method, path, body, token)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	ww.last = httpResult{status: resp.StatusCode, header: resp.Header, body: b}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		ww.last.events = sseEvents(b)
	} else {
		var v any
		if json.Unmarshal(b, &v) == nil {
			if t, err := jsonPath(v, "choices.0.text"); err == nil {
				ww.plainText, _ = t.(string)
			}
		}
	}
	return nil
}

// startStream posts body and reads the SSE response in the background.
func (ww *workerWorld) startStream(name, path string, body []byte) error {
	ctx, cancel := context.WithCancel(context.Background())
	req, err := ww.request(ctx, http.MethodPost, path, body, ww.token)
	if err != nil {
		cancel()
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		return fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	s := &liveStream{done: make(chan struct{}), cancel: cancel}
	ww.streams[name] = s
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok || data == "[DONE]" {
				continue
			}
			s.mu.Lock()
			s.events = append(s.events, []byte(data))
			s.mu.Unlock()
		}
		s.err = sc.Err()
	}()
	return nil
}

func (ww *workerWorld) startCallbackReceiver() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ww.callbacks = make(chan []byte, 10)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ww.callbacks <- b
		w.WriteHeader(http.StatusNoContent)
	})}
	go srv.Serve(ln)
	ww.w.onCleanup(func() { srv.Close() })
	ww.w.vars["CALLBACK"] = "http://" + ln.Addr().String() + "/v1/callback"
	return nil
}

// fuzzRequests sends n random bodies (broken JSON, wrong types, random
// values, binary junk) to the worker's POST endpoints, 8 at a time.
func (ww *workerWorld) fuzzRequests(n int) error {
	rng := rand.New(rand.NewPCG(42, 7))
	bodies := make([][]byte, n)
	paths := make([]string, n)
	endpoints := []string{"/v1/inference", "/v1/completions", "/v1/chat/completions", "/v1/inference/x", "/v1/ready"}
	for i := range bodies {
		bodies[i] = randomBody(rng)
		paths[i] = endpoints[rng.IntN(len(endpoints))]
	}
	var mu sync.Mutex
	ww.fuzz = map[int]int{}
	jobs := make(chan int)
	var wg sync.WaitGroup
	var firstErr error
	client := &http.Client{Timeout: 2 * time.Minute}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				resp, err := client.Post(ww.url+paths[i], "application/json", bytes.NewReader(bodies[i]))
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("request %d (%q): %w", i, bodies[i], err)
					}
				} else {
					ww.fuzz[resp.StatusCode]++
				}
				mu.Unlock()
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return firstErr
}

func randomBody(rng *rand.Rand) []byte {
	fields := []string{"prompt", "max_tokens", "temperature", "top_p", "top_k", "min_p", "repeat_penalty", "seed", "stop",
		"job_id", "stream", "messages", "model", "n", "junk", "", "prompt\u0000"}
	values := []any{"", "hi", "Once upon a time", "\u0000", "\xff\xfe", strings.Repeat("z", rng.IntN(300)), -1, 0, 1, 3, 2.5, -0.5, 1e308,
		1 << 40, true, false, nil, []any{}, []any{"a"}, []any{1, 2}, map[string]any{}, []any{map[string]any{"role": "user", "content": "hi"}},
		[]any{map[string]any{"role": 5}}, "../../etc/passwd", "job-1"}
	switch rng.IntN(6) {
	case 0: // binary junk
		b := make([]byte, rng.IntN(200))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	case 1: // truncated JSON
		b, _ := json.Marshal(map[string]any{"prompt": "hi", "max_tokens": rng.IntN(10)})
		return b[:rng.IntN(len(b))]
	case 2: // JSON that is not an object
		return []byte([]string{"[]", "null", "1", `"s"`, "true", "{}", "[{}]", `{"prompt":{"a":1}}`}[rng.IntN(8)])
	default: // objects with random fields and values
		m := map[string]any{}
		for range rng.IntN(6) {
			m[fields[rng.IntN(len(fields))]] = values[rng.IntN(len(values))]
		}
		if rng.IntN(2) == 0 {
			m["max_tokens"] = rng.IntN(6)
		}
		b, err := json.Marshal(m)
		if err != nil {
			return []byte("{}")
		}
		return b
	}
}

// sseEvents returns the data payloads of an SSE body, [DONE] excluded.
func sseEvents(body []byte) [][]byte {
	var out [][]byte
	for _, line := range bytes.Split(body, []byte("\n")) {
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if ok && string(data) != "[DONE]" {
			out = append(out, data)
		}
	}
	return out
}

func countEvents(events [][]byte, typ string) int {
	n := 0
	for _, ev := range events {
		if eventField(ev, "type", typ) == nil {
			n++
		}
	}
	return n
}

func findEvent(events [][]byte, typ string) ([]byte, error) {
	for _, ev := range events {
		if eventField(ev, "type", typ) == nil {
			return ev, nil
		}
	}
	return nil, fmt.Errorf("no %q event among %d events", typ, len(events))
}

func streamedText(events [][]byte) string {
	var b strings.Builder
	for _, ev := range events {
		var e struct {
			Type string `json:"type"`
			T    string `json:"t"`
		}
		if json.Unmarshal(ev, &e) == nil && e.Type == "token" {
			b.WriteString(e.T)
		}
	}
	return b.String()
}

// eventField checks that a JSON event has key (a dotted path) equal to want.
func eventField(ev []byte, key, want string) error {
	var v any
	if err := json.Unmarshal(ev, &v); err != nil {
		return fmt.Errorf("event is not JSON: %s", ev)
	}
	got, err := jsonPath(v, key)
	if err != nil {
		return fmt.Errorf("%w in %s", err, ev)
	}
	if fmt.Sprint(got) != want {
		return fmt.Errorf("%s = %v, want %s in %s", key, got, want, ev)
	}
	return nil
}

// jsonPath follows a dotted path (object keys and array indexes) through
// decoded JSON.
func jsonPath(v any, path string) (any, error) {
	for _, part := range splitPath(path) {
		switch x := v.(type) {
		case map[string]any:
			val, ok := x[part]
			if !ok {
				return nil, fmt.Errorf("no %q at %s", part, path)
			}
			v = val
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(x) {
				return nil, fmt.Errorf("no index %q at %s", part, path)
			}
			v = x[i]
		default:
			return nil, fmt.Errorf("cannot descend into %v at %s", v, path)
		}
	}
	return v, nil
}

// splitPath splits on dots outside brackets, so "details.field" is two keys
// and "messages[0].role" stays one key.
func splitPath(path string) []string {
	var parts []string
	depth, start := 0, 0
	for i, c := range path {
		switch c {
		case '[':
			depth++
		case ']':
			depth--
		case '.':
			if depth == 0 {
				parts = append(parts, path[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, path[start:])
}

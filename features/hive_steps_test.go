package features

// Steps for the hive (@hive): a real `rbee hive` in the background, driven
// over HTTP, with real workers on the tiny model.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cucumber/godog"

	"github.com/rbee-dev/rbee/internal/testsshd"
)

func init() { stepSets = append(stepSets, registerHiveSteps) }

// hiveWorld is the hive of one scenario and the last exchange with it.
type hiveWorld struct {
	w       *world
	line    string // the command line the hive was started with
	url     string
	dataDir string
	token   string
	proc    *bgProc
	pids    map[int]string // every hive and worker pid seen → what it was
	oldPIDs map[string]int // worker id → pid before a kill or restart

	status int
	header http.Header
	body   []byte
	events []map[string]any

	pending   chan *hiveWorld   // the answer of a request started in the background
	inference chan inferOutcome // the end of an inference started in the background

	fuzz    map[int]int
	fuzzErr []string
	holds   []net.Listener
}

func registerHiveSteps(sc *godog.ScenarioContext, w *world) {
	hw := &hiveWorld{w: w, pids: map[int]string{}, oldPIDs: map[string]int{}}
	w.onCleanup(func() {
		for _, l := range hw.holds {
			l.Close()
		}
	})

	sc.Step(`^a hive$`, func() error { return hw.start("") })
	sc.Step(`^a hive with "([^"]*)"$`, func(args string) error { return hw.start(args) })
	sc.Step(`^a hive with the token "([^"]*)"$`, func(tok string) error {
		if err := os.WriteFile(filepath.Join(w.dir, "hive.token"), []byte(tok+"\n"), 0o600); err != nil {
			return err
		}
		hw.token = tok
		return hw.start("--token-file hive.token")
	})
	sc.Step(`^an? (\d+) MiB filesystem as the hive's data dir$`, hw.smallDataDir)

	sc.Step(`^I (GET|DELETE) "([^"]*)" on the hive$`, func(method, path string) error {
		return hw.do(method, path, nil, hw.token, false)
	})
	sc.Step(`^I GET "([^"]*)" on the hive without a token$`, func(path string) error {
		return hw.do(http.MethodGet, path, nil, "", false)
	})
	sc.Step(`^I GET "([^"]*)" on the hive with the token "([^"]*)"$`, func(path, tok string) error {
		return hw.do(http.MethodGet, path, nil, tok, false)
	})
	sc.Step(`^I PUT "([^"]*)" on the hive:$`, func(path string, body *godog.DocString) error {
		return hw.do(http.MethodPut, path, []byte(w.expand(body.Content)), hw.token, false)
	})
	sc.Step(`^I PUT "([^"]*)" on the hive with progress:$`, func(path string, body *godog.DocString) error {
		return hw.do(http.MethodPut, path, []byte(w.expand(body.Content)), hw.token, true)
	})

	sc.Step(`^I PUT "([^"]*)" on the hive (\d+) times at once:$`, func(path string, n int, body *godog.DocString) error {
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			go func() {
				h := &hiveWorld{w: w, url: hw.url}
				err := h.do(http.MethodPut, path, []byte(w.expand(body.Content)), hw.token, false)
				if err == nil && h.status != http.StatusOK {
					err = fmt.Errorf("request %d: %d %s", i, h.status, h.body)
				}
				errs <- err
			}()
		}
		for i := 0; i < n; i++ {
			if err := <-errs; err != nil {
				return err
			}
		}
		return nil
	})
	sc.Step(`^the hive answers (\d+)$`, func(code int) error {
		if hw.status != code {
			return fmt.Errorf("status %d, want %d: %s", hw.status, code, hw.body)
		}
		return nil
	})
	sc.Step(`^the hive's answer (contains|does not contain) "((?:[^"\\]|\\.)*)"$`, func(which, want string) error {
		want = w.expand(unquote(want))
		if strings.Contains(string(hw.body), want) != (which == "contains") {
			return fmt.Errorf("answer %s %q:\n%s", map[bool]string{true: "contains", false: "does not contain"}[which != "contains"], want, hw.body)
		}
		return nil
	})
	sc.Step(`^the hive's answer header "([^"]*)" contains "([^"]*)"$`, func(k, want string) error {
		if !strings.Contains(hw.header.Get(k), want) {
			return fmt.Errorf("header %s is %q, want it to contain %q", k, hw.header.Get(k), want)
		}
		return nil
	})
	sc.Step(`^the hive's JSON "([^"]*)" is "([^"]*)"$`, func(path, want string) error {
		v, err := hiveJSONPath(hw.body, path)
		if err != nil {
			return err
		}
		if got := fmt.Sprint(v); got != w.expand(want) {
			return fmt.Errorf("%s is %q, want %q in %s", path, got, w.expand(want), hw.body)
		}
		return nil
	})
	sc.Step(`^the hive's JSON "([^"]*)" matches the rbee binary$`, func(path string) error {
		v, err := hiveJSONPath(hw.body, path)
		if err != nil {
			return err
		}
		want, err := hiveSHA256(rbeeBin)
		if err != nil {
			return err
		}
		if v != want {
			return fmt.Errorf("%s is %v, want the sha256 of %s: %s", path, v, rbeeBin, want)
		}
		return nil
	})
	sc.Step(`^the hive's JSON "([^"]*)" is at least (\d+)$`, func(path string, min float64) error {
		v, err := hiveJSONPath(hw.body, path)
		if err != nil {
			return err
		}
		var f float64
		switch n := v.(type) {
		case int64:
			f = float64(n)
		case float64:
			f = n
		default:
			return fmt.Errorf("%s is %v, not a number", path, v)
		}
		if f < min {
			return fmt.Errorf("%s is %v, want a number ≥ %v", path, v, min)
		}
		return nil
	})
	sc.Step(`^the hive sent at least (\d+) progress events counting up to ([^ ]+) bytes$`, hw.checkProgress)
	sc.Step(`^the last event is "([^"]*)" with "([^"]*)" "([^"]*)"$`, func(typ, path, want string) error {
		if len(hw.events) == 0 {
			return fmt.Errorf("no events; answer %d: %s", hw.status, hw.body)
		}
		last := hw.events[len(hw.events)-1]
		b, _ := json.Marshal(last)
		if last["type"] != typ {
			return fmt.Errorf("last event %s, want type %q", b, typ)
		}
		v, err := hiveJSONPath(b, path)
		if err != nil {
			return err
		}
		if fmt.Sprint(v) != w.expand(want) {
			return fmt.Errorf("last event %s: %s is %v, want %q", b, path, v, w.expand(want))
		}
		return nil
	})

	sc.Step(`^the model "([^"]*)" is provisioned from "([^"]*)"$`, func(name, src string) error {
		if err := hw.do(http.MethodPut, "/v1/models/"+name, []byte(`{"source":"`+src+`"}`), hw.token, false); err != nil {
			return err
		}
		if hw.status != http.StatusOK {
			return fmt.Errorf("provisioning %s: %d %s", name, hw.status, hw.body)
		}
		return nil
	})
	sc.Step(`^the hive's catalog (has|does not have) the model "([^"]*)"(?: with sha256 "([^"]*)")?$`, func(which, name, sha string) error {
		st, err := hw.state()
		if err != nil {
			return err
		}
		for _, m := range st.Models {
			if m.Name == name {
				if which != "has" {
					return fmt.Errorf("the catalog has %q: %+v", name, m)
				}
				if sha != "" && m.SHA256 != w.expand(sha) {
					return fmt.Errorf("model %q has sha256 %s, want %s", name, m.SHA256, w.expand(sha))
				}
				return nil
			}
		}
		if which == "has" {
			return fmt.Errorf("the catalog has no %q: %+v", name, st.Models)
		}
		return nil
	})
	sc.Step(`^the hive's data dir holds no file for the model "([^"]*)"$`, func(name string) error {
		var files []string
		filepath.Walk(filepath.Join(hw.dataDir, "models", name), func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				files = append(files, p)
			}
			return nil
		})
		if len(files) > 0 {
			return fmt.Errorf("files left behind: %v", files)
		}
		return nil
	})
	sc.Step(`^the model file of "([^"]*)" is replaced by garbage of the same size$`, func(name string) error {
		p := filepath.Join(hw.dataDir, "models", name, "tiny.gguf")
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		return os.WriteFile(p, bytes.Repeat([]byte("garbage!"), int(fi.Size()/8)+1)[:fi.Size()], 0o644)
	})

	sc.Step(`^a worker "([^"]*)" on the model "([^"]*)"$`, func(id, model string) error {
		if err := hw.do(http.MethodPut, "/v1/workers/"+id, []byte(`{"model":"`+model+`","slots":2,"ctx_size":512}`), hw.token, false); err != nil {
			return err
		}
		if hw.status/100 != 2 {
			return fmt.Errorf("PUT worker %s: %d %s", id, hw.status, hw.body)
		}
		return hw.expectWorker(id, "idle", -1, false)
	})
	sc.Step(`^the worker "([^"]*)" becomes "([^"]*)"$`, func(id, state string) error {
		return hw.expectWorker(id, state, -1, false)
	})
	sc.Step(`^the worker "([^"]*)" is "([^"]*)" again with a new pid and (\d+) restarts? in the hive's state$`, func(id, state string, restarts int) error {
		return hw.expectWorker(id, state, restarts, true)
	})
	sc.Step(`^the worker "([^"]*)" answers on its URL$`, func(id string) error {
		ws, err := hw.worker(id)
		if err != nil {
			return err
		}
		req, _ := http.NewRequest(http.MethodGet, ws.URL+"/v1/ready", nil)
		if hw.token != "" {
			req.Header.Set("Authorization", "Bearer "+hw.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !bytes.Contains(b, []byte(`"ready":true`)) {
			return fmt.Errorf("worker %s at %s: %s", id, ws.URL, b)
		}
		return nil
	})
	sc.Step(`^I kill -9 the worker "([^"]*)"$`, func(id string) error {
		ws, err := hw.worker(id)
		if err != nil {
			return err
		}
		if ws.PID <= 0 {
			return fmt.Errorf("worker %s has no pid: %+v", id, ws)
		}
		hw.oldPIDs[id] = ws.PID
		return syscall.Kill(ws.PID, syscall.SIGKILL)
	})
	sc.Step(`^the first free worker port is held by another program$`, func() error {
		for port := 8001; port < 8100; port++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
			if err == nil {
				hw.holds = append(hw.holds, l)
				w.vars["HELD_PORT"] = strconv.Itoa(port)
				return nil
			}
		}
		return fmt.Errorf("no free port from 8001 to 8099")
	})
	sc.Step(`^the worker "([^"]*)" does not use the held port$`, func(id string) error {
		ws, err := hw.worker(id)
		if err != nil {
			return err
		}
		if strconv.Itoa(ws.Port) == w.vars["HELD_PORT"] {
			return fmt.Errorf("worker %s got the held port %d", id, ws.Port)
		}
		return nil
	})
	sc.Step(`^the hive's output contains "([^"]*)"$`, func(want string) error {
		return eventually(10*time.Second, func() error {
			if !strings.Contains(hw.proc.out.String(), w.expand(want)) {
				return fmt.Errorf("hive output does not contain %q:\n%s", want, tail(hw.proc.out.String(), 30))
			}
			return nil
		})
	})

	sc.Step(`^I send SIGTERM to the hive$`, func() error {
		hw.rememberPIDs()
		return syscall.Kill(hw.proc.cmd.Process.Pid, syscall.SIGTERM)
	})
	sc.Step(`^the hive exits with code (\d+)$`, func(code int) error {
		select {
		case <-hw.proc.done:
		case <-time.After(40 * time.Second):
			return fmt.Errorf("the hive is still running 40 s after SIGTERM")
		}
		if got := hw.proc.cmd.ProcessState.ExitCode(); got != code {
			return fmt.Errorf("the hive exited with %d, want %d:\n%s", got, code, tail(hw.proc.out.String(), 30))
		}
		return nil
	})
	sc.Step(`^no process of the hive or its workers is left$`, hw.noneLeft)
	sc.Step(`^I restart the hive$`, func() error { return hw.restart(syscall.SIGTERM) })
	sc.Step(`^I kill -9 the hive and start it again$`, func() error { return hw.restart(syscall.SIGKILL) })
	sc.Step(`^I start a PUT of "([^"]*)" on the hive:$`, func(path string, body *godog.DocString) error {
		h := &hiveWorld{w: w, url: hw.url}
		done := make(chan *hiveWorld, 1)
		hw.pending = done
		go func() { // awaited only by "the started request answers"
			_ = h.do(http.MethodPut, path, []byte(w.expand(body.Content)), hw.token, false)
			done <- h
		}()
		return nil
	})
	sc.Step(`^the hive's data dir holds a partial download of "([^"]*)"$`, func(name string) error {
		return eventually(20*time.Second, func() error {
			matches, _ := filepath.Glob(filepath.Join(hw.dataDir, "models", name, "*.partial"))
			for _, m := range matches {
				if fi, err := os.Stat(m); err == nil && fi.Size() > 0 {
					return nil
				}
			}
			return fmt.Errorf("no partial download of %s with bytes in it", name)
		})
	})

	registerHiveHardeningSteps(sc, hw)
	sc.Step(`^I send (\d+) random requests to the hive$`, hw.fuzzRequests)
	sc.Step(`^no random request got a 500 and the hive still answers$`, func() error {
		if len(hw.fuzzErr) > 0 {
			return fmt.Errorf("%d requests failed, e.g. %s", len(hw.fuzzErr), hw.fuzzErr[0])
		}
		fmt.Fprintf(os.Stderr, "hive fuzz statuses: %v\n", hw.fuzz)
		if hw.fuzz[500] > 0 {
			return fmt.Errorf("%d answers were 500 (all: %v)", hw.fuzz[500], hw.fuzz)
		}
		if err := hw.do(http.MethodGet, "/v1/health", nil, hw.token, false); err != nil || hw.status != 200 {
			return fmt.Errorf("the hive does not answer after the random requests: %v %d", err, hw.status)
		}
		return nil
	})
}

// start runs `rbee hive` on a free loopback port with a data dir in the
// scenario folder, a 1 s health interval and a 2 s stall timeout.
func (hw *hiveWorld) start(args string) error {
	port, err := testsshd.FreePort("127.0.0.1")
	if err != nil {
		return err
	}
	args = hw.w.expand(args)
	if !strings.Contains(args, "--data-dir") {
		if hw.dataDir == "" {
			hw.dataDir = filepath.Join(hw.w.dir, "hive")
		}
		args += " --data-dir " + hw.dataDir
	}
	hw.url = fmt.Sprintf("http://127.0.0.1:%d", port)
	hw.w.vars["HIVE"] = hw.url
	hw.w.vars["HIVE_DATA"] = hw.dataDir
	line := fmt.Sprintf("exec rbee hive --listen 127.0.0.1:%d --health-interval 1s --stall-timeout 2s %s", port, args)
	return hw.launch(line)
}

// restart stops the hive with sig, waits for it and starts it again with the
// same command line. After SIGTERM no worker of the hive may be left.
func (hw *hiveWorld) restart(sig syscall.Signal) error {
	for id, ws := range hw.lastWorkers() {
		hw.oldPIDs[id] = ws
	}
	if err := syscall.Kill(hw.proc.cmd.Process.Pid, sig); err != nil {
		return err
	}
	select {
	case <-hw.proc.done:
	case <-time.After(40 * time.Second):
		return fmt.Errorf("the hive did not stop within 40 s of %v", sig)
	}
	if sig == syscall.SIGTERM {
		if err := hw.noneLeft(); err != nil {
			return fmt.Errorf("after the hive stopped: %w", err)
		}
	}
	return hw.launch(hw.line)
}

func (hw *hiveWorld) launch(line string) error {
	hw.line = line
	p, err := hw.w.startBackground("hive", line)
	if err != nil {
		return err
	}
	hw.proc = p
	hw.pids[p.cmd.Process.Pid] = "hive"
	return eventually(30*time.Second, func() error {
		select {
		case <-p.done:
			return fmt.Errorf("the hive exited:\n%s", tail(p.out.String(), 30))
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, hw.url+"/v1/health", nil)
		if hw.token != "" {
			req.Header.Set("Authorization", "Bearer "+hw.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("health: %d", resp.StatusCode)
		}
		return nil
	})
}

// smallDataDir mounts a tmpfs of mib MiB as the data dir: a real full disk.
func (hw *hiveWorld) smallDataDir(mib int) error {
	dir := filepath.Join(hw.w.dir, "small")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", mib), "tmpfs", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mounting a %d MiB tmpfs needs root (CAP_SYS_ADMIN): %v: %s", mib, err, out)
	}
	hw.w.onCleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	hw.dataDir = dir
	return nil
}

func (hw *hiveWorld) do(method, path string, body []byte, token string, stream bool) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, hw.url+hw.w.expand(path), rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if stream {
		req.Header.Set("Accept", "text/event-stream")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	hw.status, hw.header, hw.events = resp.StatusCode, resp.Header, nil
	if stream && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		var all bytes.Buffer
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var ev map[string]any
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				return fmt.Errorf("bad event %q: %v", data, err)
			}
			hw.events = append(hw.events, ev)
		}
		hw.body = all.Bytes()
		return sc.Err()
	}
	hw.body, err = io.ReadAll(resp.Body)
	return err
}

func (hw *hiveWorld) checkProgress(n int, total string) error {
	want, err := strconv.ParseFloat(hw.w.expand(total), 64)
	if err != nil {
		return fmt.Errorf("total %q is not a number", total)
	}
	var progress []map[string]any
	for _, ev := range hw.events {
		if ev["type"] == "progress" {
			progress = append(progress, ev)
		}
	}
	if len(progress) < n {
		return fmt.Errorf("%d progress events, want at least %d:\n%s", len(progress), n, hw.body)
	}
	prev := -1.0
	for _, ev := range progress {
		b, _ := ev["bytes"].(float64)
		if b < prev || ev["total"] != want {
			return fmt.Errorf("progress event %v: bytes must not go back and total must be %v", ev, want)
		}
		if _, ok := ev["rate"]; !ok && b > 0 && b != want {
			return fmt.Errorf("progress event %v has no rate", ev)
		}
		prev = b
	}
	if prev != want {
		return fmt.Errorf("the last progress event reached %v bytes, want %v", prev, want)
	}
	return nil
}

// hiveState is the part of GET /v1/state the steps read.
type hiveState struct {
	Models []struct {
		Name   string `json:"name"`
		SHA256 string `json:"sha256"`
	} `json:"models"`
	Workers []hiveWorkerStatus `json:"workers"`
}

type hiveWorkerStatus struct {
	ID        string `json:"id"`
	PID       int    `json:"pid"`
	Port      int    `json:"port"`
	URL       string `json:"url"`
	State     string `json:"state"`
	Restarts  int    `json:"restarts"`
	LastError string `json:"last_error"`
}

func (hw *hiveWorld) state() (hiveState, error) {
	var st hiveState
	req, _ := http.NewRequest(http.MethodGet, hw.url+"/v1/state", nil)
	if hw.token != "" {
		req.Header.Set("Authorization", "Bearer "+hw.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return st, fmt.Errorf("GET /v1/state: %d %s", resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, err
	}
	for _, ws := range st.Workers {
		if ws.PID > 0 {
			hw.pids[ws.PID] = "worker " + ws.ID
		}
	}
	return st, nil
}

func (hw *hiveWorld) worker(id string) (hiveWorkerStatus, error) {
	st, err := hw.state()
	if err != nil {
		return hiveWorkerStatus{}, err
	}
	for _, ws := range st.Workers {
		if ws.ID == id {
			return ws, nil
		}
	}
	return hiveWorkerStatus{}, fmt.Errorf("the hive's state has no worker %q", id)
}

// lastWorkers returns the current pid of every worker (and, like every read
// of the state, records the pids).
func (hw *hiveWorld) lastWorkers() map[string]int {
	out := map[string]int{}
	if st, err := hw.state(); err == nil {
		for _, ws := range st.Workers {
			out[ws.ID] = ws.PID
		}
	}
	return out
}

// expectWorker polls the hive's state until worker id is in state (and, if
// restarts ≥ 0, has that many restarts; with newPID, a pid other than the
// one remembered before a kill or restart, and a live process).
func (hw *hiveWorld) expectWorker(id, state string, restarts int, newPID bool) error {
	var last hiveWorkerStatus
	err := eventually(90*time.Second, func() error {
		ws, err := hw.worker(id)
		if err != nil {
			return err
		}
		last = ws
		switch {
		case ws.State != state:
			return fmt.Errorf("worker %s is %q, want %q", id, ws.State, state)
		case restarts >= 0 && ws.Restarts != restarts:
			return fmt.Errorf("worker %s has %d restarts, want %d", id, ws.Restarts, restarts)
		case newPID && (ws.PID <= 0 || ws.PID == hw.oldPIDs[id]):
			return fmt.Errorf("worker %s still has pid %d", id, ws.PID)
		case newPID && syscall.Kill(ws.PID, 0) != nil:
			return fmt.Errorf("worker %s pid %d is not running", id, ws.PID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w\nlast status: %+v\nhive output:\n%s", err, last, tail(hw.proc.out.String(), 20))
	}
	return nil
}

// rememberPIDs records the pids the hive reports right now.
func (hw *hiveWorld) rememberPIDs() { _, _ = hw.state() }

// noneLeft checks that no hive or worker process seen in this scenario is
// alive or a zombie, and that no worker process serves a model from this
// scenario's data dir.
func (hw *hiveWorld) noneLeft() error {
	return eventually(10*time.Second, func() error {
		for pid, what := range hw.pids {
			if pid == hw.proc.cmd.Process.Pid && hw.proc.cmd.ProcessState == nil {
				continue // the current hive, still running
			}
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				continue // gone
			}
			if i := bytes.LastIndexByte(b, ')'); i > 0 && i+2 < len(b) && b[i+2] == 'Z' {
				return fmt.Errorf("%s (pid %d) is a zombie", what, pid)
			}
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if bytes.Contains(cmdline, []byte("rbee")) {
				return fmt.Errorf("%s (pid %d) is still running: %s", what, pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
			}
		}
		if hw.proc.cmd.ProcessState == nil {
			return nil // the hive runs; its workers are its business
		}
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			cmdline, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			if bytes.Contains(cmdline, []byte("worker\x00")) && bytes.Contains(cmdline, []byte(hw.dataDir)) {
				return fmt.Errorf("a worker of this hive is still running: %s (%s)", p, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
			}
		}
		return nil
	})
}

// fuzzRequests sends n random requests (seeded, so a failure can be
// replayed) and counts the statuses.
func (hw *hiveWorld) fuzzRequests(n int) error {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("RBEE_FUZZ_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	fmt.Fprintf(os.Stderr, "hive fuzz seed %d (set RBEE_FUZZ_SEED to replay)\n", seed)
	rng := rand.New(rand.NewPCG(seed, 42))
	hw.fuzz = map[int]int{}
	client := &http.Client{Timeout: 30 * time.Second}
	methods := []string{"GET", "PUT", "POST", "DELETE", "PATCH", "HEAD"}
	names := []string{"tiny", "a", "UPPER", "-x", "x-", strings.Repeat("n", 65), "..", "%2e%2e", "a%2Fb", "%00", "w%0Ax", "😀", "name;rm", ""}
	paths := []string{"/v1/models/%s", "/v1/workers/%s", "/v1/workers/%s/logs?lines=%s", "/v1/workers/%s/ready", "/v1/state", "/v1/health", "/v1/models", "/v1/workers", "/%s", "/v1/%s/../../etc/passwd"}
	sources := []string{"synth:tiny", "synth:nope", "hf:a/b", "hf:../x", "file:///etc/passwd", "file:///nope.gguf", "https://127.0.0.1:1/x.gguf", "http://example.com/x.gguf", "s3://x", "", "synth:tiny\u0000", "hf:a/b\n"}
	randString := func() string {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return string(b)
	}
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	body := func() []byte {
		switch rng.IntN(8) {
		case 0:
			return nil
		case 1:
			return []byte(randString())
		case 2:
			m := map[string]any{"source": pick(sources), "file": pick(append(names, "x.gguf", "../../x.gguf")), "revision": pick(names), "sha256": pick([]string{"", "zz", strings.Repeat("a", 64)})}
			b, _ := json.Marshal(m)
			return b
		case 3:
			m := map[string]any{"model": pick(names), "slots": rng.IntN(200) - 50, "ctx_size": rng.IntN(1 << 22), "threads": rng.IntN(3000) - 100,
				"backend": pick([]string{"cpu", "cuda", "metal", "rocm", ""}), "device": rng.IntN(100) - 10,
				"idle_timeout": pick([]string{"0s", "1h", "-1s", "soon", ""}), "load_timeout": pick([]string{"5m", "0", "x", "-5m"}), "pool": pick(names)}
			b, _ := json.Marshal(m)
			return b
		case 4:
			return []byte(strings.Repeat("[", rng.IntN(5000)) + strings.Repeat("]", rng.IntN(5000)))
		case 5:
			return []byte(`{"source":"` + strings.Repeat("a", (1<<20)+rng.IntN(1000)) + `"}`)
		case 6:
			return []byte(`{"source":` + strconv.Quote(pick(sources)) + `,"extra":` + strconv.Itoa(rng.Int()) + `}`)
		default:
			b, _ := json.Marshal(map[string]any{randString(): randString(), "slots": randString()})
			return b
		}
	}
	valid := []string{"tiny", "m", "w-0", "chat-1"}
	for i := 0; i < n; i++ {
		p := pick(paths)
		switch strings.Count(p, "%s") {
		case 1:
			p = fmt.Sprintf(p, pick(names))
		case 2:
			p = fmt.Sprintf(p, pick(names), pick([]string{"1", "0", "-1", "x", "100000", ""}))
		}
		method := pick(methods)
		if rng.IntN(10) < 7 { // mostly bodies that reach the decoders
			method = http.MethodPut
			p = fmt.Sprintf(pick([]string{"/v1/models/%s", "/v1/workers/%s", "/v1/workers/%s?wait=false"}), pick(valid))
		}
		b := body()
		var rd io.Reader
		if b != nil {
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequest(method, hw.url+p, rd)
		if err != nil {
			continue // not even a valid request line; nothing reaches the hive
		}
		if rng.IntN(4) == 0 {
			req.Header.Set("Accept", "text/event-stream")
		}
		if hw.token != "" {
			req.Header.Set("Authorization", "Bearer "+hw.token)
		}
		resp, err := client.Do(req)
		if err != nil {
			hw.fuzzErr = append(hw.fuzzErr, fmt.Sprintf("%s %s: %v", method, p, err))
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		hw.fuzz[resp.StatusCode]++
	}
	return nil
}

// hiveJSONPath reads a dotted path ("error.code", "workers.0.state") from JSON.
func hiveJSONPath(body []byte, path string) (any, error) {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("not JSON (%v): %s", err, body)
	}
	v, err := jsonPath(v, path)
	if err != nil {
		return nil, fmt.Errorf("%w in %s", err, body)
	}
	if f, ok := v.(float64); ok && f == float64(int64(f)) {
		return int64(f), nil
	}
	return v, nil
}

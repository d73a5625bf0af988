package features

// Steps of the @infer scenarios: a fleet on this machine (a local node whose
// hive `rbee apply` installs under the scenario folder), and checks against
// the live hive and worker APIs with the tokens apply keeps beside the state.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cucumber/godog"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/infer"
	"github.com/rbee-dev/rbee/internal/testsshd"
)

func init() { stepSets = append(stepSets, registerInferSteps) }

// localFleet is the configuration of the @infer scenarios: this machine as
// node "local" with its hive on a free port, one generated model, one pool.
const localFleet = `node "local" {
  connection = "local"
  hive_port  = %d
}
model "%s" {
  source = "synth:tiny"
}
pool "%s" {
  model    = "%s"
  nodes    = ["local"]
  replicas = %d
  slots    = %d
  ctx_size = 32768
%s}
`

// localHive returns a client for the hive apply installed for the scenario's
// local node, with the token apply recorded beside the state.
func (w *world) localHive() (*hiveapi.Client, error) {
	port := w.vars["HIVE_PORT"]
	if port == "" {
		return nil, errors.New("no local fleet in this scenario")
	}
	tok, err := os.ReadFile(filepath.Join(w.dir, ".rbee", "hive-tokens", "local"))
	if err != nil {
		return nil, fmt.Errorf("the hive token apply records: %w", err)
	}
	return hiveapi.NewClient("http://127.0.0.1:"+port, strings.TrimSpace(string(tok))), nil
}

// liveWorker returns what the local hive says about worker id.
func (w *world) liveWorker(id string) (hiveapi.WorkerStatus, *hiveapi.Client, error) {
	c, err := w.localHive()
	if err != nil {
		return hiveapi.WorkerStatus{}, nil, err
	}
	workers, err := hiveWorkers(c)
	if err != nil {
		return hiveapi.WorkerStatus{}, nil, err
	}
	for _, ws := range workers {
		if ws.ID == id {
			return ws, c, nil
		}
	}
	return hiveapi.WorkerStatus{}, nil, fmt.Errorf("the hive runs no worker %q (it runs %d workers)", id, len(workers))
}

// hiveWorkers lists the workers a hive reports, asking it for at most 5 s.
func hiveWorkers(c *hiveapi.Client) ([]hiveapi.WorkerStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.State(ctx)
	if err != nil {
		return nil, err
	}
	return st.Workers, nil
}

func registerInferSteps(sc *godog.ScenarioContext, w *world) {
	fleetFile := func(pool, model string, replicas, slots int, extra string) error {
		// Stop what apply started: destroy as a user would, then anything left.
		if err := w.localFleet([]string{
			"rbee destroy -auto-approve",
			"test ! -f demo/rbee.hcl || rbee destroy -auto-approve --config demo/rbee.hcl",
		}, "HIVE_PORT"); err != nil {
			return err
		}
		port, _ := strconv.Atoi(w.vars["HIVE_PORT"])
		body := fmt.Sprintf(localFleet, port, model, pool, model, replicas, slots, extra)
		return os.WriteFile(filepath.Join(w.dir, "rbee.hcl"), []byte(body), 0o644)
	}
	sc.Step(`^a local fleet file with pool "([^"]*)" serving model "([^"]*)"$`, func(pool, model string) error {
		return fleetFile(pool, model, 1, 2, "")
	})
	sc.Step(`^a local fleet file with pool "([^"]*)" serving model "([^"]*)" with 1 slot$`, func(pool, model string) error {
		return fleetFile(pool, model, 1, 1, "")
	})
	sc.Step(`^a local fleet file with pool "([^"]*)" serving model "([^"]*)" with idle timeout "([^"]*)"$`, func(pool, model, idle string) error {
		return fleetFile(pool, model, 1, 2, fmt.Sprintf("  idle_timeout = %q\n", idle))
	})
	sc.Step(`^a local fleet file with pool "([^"]*)" serving model "([^"]*)" with (\d+) replicas$`, func(pool, model string, n int) error {
		return fleetFile(pool, model, n, 2, "")
	})

	sc.Step(`^I note the pid of worker "([^"]*)" as "([^"]*)"$`, func(id, name string) error {
		ws, _, err := w.liveWorker(id)
		if err != nil {
			return err
		}
		if ws.PID <= 0 {
			return fmt.Errorf("worker %s has no pid: %+v", id, ws)
		}
		w.vars[name] = strconv.Itoa(ws.PID)
		return nil
	})
	sc.Step(`^the pid of worker "([^"]*)" is still "([^"]*)"$`, func(id, want string) error {
		ws, _, err := w.liveWorker(id)
		if err != nil {
			return err
		}
		if got := strconv.Itoa(ws.PID); got != w.expand(want) {
			return fmt.Errorf("worker %s has pid %s, want %s (it was restarted %d times)", id, got, w.expand(want), ws.Restarts)
		}
		return nil
	})

	sc.Step(`^the worker "([^"]*)" has all its slots free$`, func(id string) error {
		ws, hc, err := w.liveWorker(id)
		if err != nil {
			return err
		}
		wc := workerapi.NewClient(ws.URL, hc.Token)
		return eventually(10*time.Second, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			r, err := wc.Ready(ctx)
			if err != nil {
				return err
			}
			if r.SlotsTotal == 0 || r.SlotsFree != r.SlotsTotal {
				return fmt.Errorf("worker %s: %d of %d slots free (%s)", id, r.SlotsFree, r.SlotsTotal, r.State)
			}
			return nil
		})
	})

	sc.Step(`^the hive reports worker "([^"]*)" as "([^"]*)"$`, func(id, want string) error {
		return eventually(time.Minute, func() error {
			ws, _, err := w.liveWorker(id)
			if err != nil {
				return err
			}
			if ws.State != want {
				return fmt.Errorf("worker %s is %s, want %s", id, ws.State, want)
			}
			return nil
		})
	})

	sc.Step(`^the hive runs no worker$`, func() error {
		c, err := w.localHive()
		if err != nil {
			return err
		}
		return eventually(15*time.Second, func() error {
			workers, err := hiveWorkers(c)
			if err != nil {
				return err
			}
			if len(workers) != 0 {
				return fmt.Errorf("the hive runs %d workers: %+v", len(workers), workers)
			}
			return nil
		})
	})

	sc.Step(`^"([^"]*)" has streamed a token$`, func(name string) error {
		p, err := w.proc(name)
		if err != nil {
			return err
		}
		return eventually(2*time.Minute, func() error {
			select {
			case <-p.done:
				return fmt.Errorf("%s ended before its first token:\n%s", name, tail(p.out.String(), 20))
			default:
			}
			if !strings.Contains(p.out.String(), `"type":"token"`) {
				return errors.New("no token yet")
			}
			return nil
		})
	})
	sc.Step(`^I send (SIGINT|SIGKILL) to "([^"]*)"$`, func(sig, name string) error {
		p, err := w.proc(name)
		if err != nil {
			return err
		}
		// The whole process group, as a terminal's Ctrl-C does.
		if sig == "SIGINT" {
			return syscall.Kill(-p.cmd.Process.Pid, syscall.SIGINT)
		}
		if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
			return err
		}
		select {
		case <-p.done:
			return nil
		case <-time.After(10 * time.Second):
			return fmt.Errorf("%s still runs 10 s after SIGKILL", name)
		}
	})
	sc.Step(`^"([^"]*)" exits with code (\d+)$`, func(name string, code int) error {
		p, err := w.proc(name)
		if err != nil {
			return err
		}
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			return fmt.Errorf("%s still runs 30s after the signal:\n%s", name, tail(p.out.String(), 20))
		}
		if got := p.cmd.ProcessState.ExitCode(); got != code {
			return fmt.Errorf("%s exited with %d, want %d:\n%s", name, got, code, tail(p.out.String(), 20))
		}
		return nil
	})
	sc.Step(`^the output of "([^"]*)" (contains|does not contain) "((?:[^"\\]|\\.)*)"$`, func(name, which, want string) error {
		p, err := w.proc(name)
		if err != nil {
			return err
		}
		want = unquote(want)
		if got := strings.Contains(p.out.String(), want); got != (which == "contains") {
			return fmt.Errorf("the output of %s %s %q:\n%s", name, map[bool]string{true: "contains", false: "lacks"}[got], want, tail(p.out.String(), 20))
		}
		return nil
	})

	sc.Step(`^the output of "([^"]*)" matches "((?:[^"\\]|\\.)*)"$`, func(name, pattern string) error {
		p, err := w.proc(name)
		if err != nil {
			return err
		}
		re, err := regexp.Compile(unquote(pattern))
		if err != nil {
			return err
		}
		if !re.MatchString(p.out.String()) {
			return fmt.Errorf("the output of %s does not match %q:\n%s", name, pattern, tail(p.out.String(), 20))
		}
		return nil
	})
	sc.Step(`^I send (SIGSTOP|SIGCONT|SIGKILL) to the fleet's worker "([^"]*)"$`, func(sig, id string) error {
		ws, _, err := w.liveWorker(id)
		if err != nil {
			return err
		}
		if ws.PID <= 0 {
			return fmt.Errorf("worker %s has no pid: %+v", id, ws)
		}
		s := map[string]syscall.Signal{"SIGSTOP": syscall.SIGSTOP, "SIGCONT": syscall.SIGCONT, "SIGKILL": syscall.SIGKILL}[sig]
		if s == syscall.SIGSTOP {
			// A stopped worker would hold up the scenario's destroy.
			w.onCleanup(func() { _ = syscall.Kill(ws.PID, syscall.SIGCONT) })
		}
		return syscall.Kill(ws.PID, s)
	})

	sc.Step(`^rbee gateway runs on a free port with every worker ready$`, func() error {
		port, err := testsshd.FreePort("127.0.0.1")
		if err != nil {
			return err
		}
		w.vars["GW_PORT"] = strconv.Itoa(port)
		p, err := w.startBackground("gw", "rbee gateway --listen 127.0.0.1:${GW_PORT}")
		if err != nil {
			return err
		}
		return eventually(time.Minute, func() error {
			select {
			case <-p.done:
				return backoffStop{fmt.Errorf("rbee gateway exited:\n%s", tail(p.out.String(), 20))}
			default:
			}
			return gatewayReady("http://127.0.0.1:" + w.vars["GW_PORT"])
		})
	})
	sc.Step(`^stdout is a JSON stream of a start event, (\d+) token events and an end event through the gateway$`, func(n int) error {
		return checkGatewayStream(w.stdout, n)
	})

	sc.Step(`^stdout is a JSON stream of a start event, (\d+) token events and an end event from "([^"]*)"$`, func(n int, worker string) error {
		return checkJSONStream(w.stdout, n, worker)
	})

	sc.Step(`^another program listens on the demo's hive port$`, func() error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		w.onCleanup(func() { _ = ln.Close() })
		w.vars["DEMO_HIVE_PORT"] = strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		return nil
	})

	sc.Step(`^I run the demo script$`, func() error {
		repo, err := filepath.Abs("..")
		if err != nil {
			return err
		}
		if w.vars["DEMO_HIVE_PORT"] == "" {
			port, err := testsshd.FreePort("127.0.0.1")
			if err != nil {
				return err
			}
			w.vars["DEMO_HIVE_PORT"] = strconv.Itoa(port)
		}
		line := fmt.Sprintf("RBEE_BIN=%q RBEE_DEMO_DIR=%q RBEE_DEMO_HIVE_PORT=%s %q",
			rbeeBin, filepath.Join(w.dir, "demo"), w.vars["DEMO_HIVE_PORT"], filepath.Join(repo, "scripts", "demo.sh"))
		return w.run(line, 5*time.Minute)
	})
}

// checkJSONStream checks the NDJSON of `rbee infer --json`: a start event
// naming the worker, n token events numbered from 0, an end event whose
// statistics agree, and nothing else.
func checkJSONStream(out string, n int, worker string) error {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != n+2 {
		return fmt.Errorf("%d lines, want %d (start, %d tokens, end):\n%s", len(lines), n+2, n, out)
	}
	var start infer.StartEvent
	if err := strictJSON(lines[0], &start); err != nil || start.Type != "start" || start.Worker != worker || !strings.HasPrefix(start.JobID, "infer-") || start.URL == "" {
		return fmt.Errorf("first line is not the start event from %s (%v): %s", worker, err, lines[0])
	}
	for i, l := range lines[1 : n+1] {
		var tok infer.TokenEvent
		if err := strictJSON(l, &tok); err != nil || tok.Type != "token" || tok.I != i {
			return fmt.Errorf("line %d is not token %d (%v): %s", i+2, i, err, l)
		}
	}
	var end infer.EndEvent
	last := lines[n+1]
	if err := strictJSON(last, &end); err != nil || end.Type != "end" {
		return fmt.Errorf("last line is not the end event (%v): %s", err, last)
	}
	if end.TokensOut != n || end.Worker != worker || end.JobID != start.JobID || end.StopReason != "max_tokens" || end.PromptTokens == 0 || end.FirstTokenMS <= 0 || end.TotalMS < end.FirstTokenMS {
		return fmt.Errorf("the end event does not add up (want %d tokens from %s, job %s): %s", n, worker, start.JobID, last)
	}
	return nil
}

// strictJSON decodes one line into v, refusing fields v does not have.
func strictJSON(line string, v any) error {
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// gatewayReady asks a gateway's GET /v1/models whether every worker it
// lists is ready.
func gatewayReady(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/models", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var list struct {
		Data []struct {
			ID           string `json:"id"`
			ReadyWorkers int    `json:"ready_workers"`
			Workers      int    `json:"workers"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return fmt.Errorf("GET %s/v1/models: %s: %w", url, resp.Status, err)
	}
	if len(list.Data) == 0 {
		return errors.New("the gateway lists no model yet")
	}
	for _, m := range list.Data {
		if m.Workers == 0 || m.ReadyWorkers != m.Workers {
			return fmt.Errorf("%s has %d of %d workers ready", m.ID, m.ReadyWorkers, m.Workers)
		}
	}
	return nil
}

// checkGatewayStream checks the NDJSON of `rbee infer --gateway --json`: a
// start event naming the gateway, text events numbered from 0, and an end
// event that counts n tokens. The OpenAI stream carries text, not tokens: a
// token without text of its own (part of a character) sends no event, so
// there may be fewer text events than tokens, never more.
func checkGatewayStream(out string, n int) error {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) < 3 || len(lines) > n+2 {
		return fmt.Errorf("%d lines, want 3 to %d (start, up to %d tokens, end):\n%s", len(lines), n+2, n, out)
	}
	texts := len(lines) - 2
	var start infer.StartEvent
	if err := strictJSON(lines[0], &start); err != nil || start.Type != "start" || start.Worker != "gateway" || start.JobID == "" {
		return fmt.Errorf("first line is not the start event from the gateway (%v): %s", err, lines[0])
	}
	for i, l := range lines[1 : texts+1] {
		var tok infer.TokenEvent
		if err := strictJSON(l, &tok); err != nil || tok.Type != "token" || tok.I != i || tok.T == "" {
			return fmt.Errorf("line %d is not token %d (%v): %s", i+2, i, err, l)
		}
	}
	var end infer.EndEvent
	if err := strictJSON(lines[texts+1], &end); err != nil || end.Type != "end" || end.TokensOut != n || end.PromptTokens == 0 ||
		end.StopReason != "max_tokens" || end.JobID != start.JobID || end.Worker != "gateway" {
		return fmt.Errorf("the end event does not add up (want %d tokens, job %s) (%v): %s", n, start.JobID, err, lines[texts+1])
	}
	return nil
}

package features

// Steps of the @watch scenarios: a real `rbee watch` daemon keeping a fleet
// on this machine (a local node whose hive runs under the scenario folder)
// equal to rbee.hcl, checked through the daemon's /v1/status and /metrics and
// the hive's own API.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cucumber/godog"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/internal/testsshd"
)

func init() { stepSets = append(stepSets, registerWatchSteps) }

// watchFleet is the watched configuration: this machine as node "local" with
// its hive on a free port, the generated tiny model, one small pool.
const watchFleet = `node "local" {
  connection = "local"
  hive_port  = %s
}

model "tiny" {
  source = "synth:tiny"
}

pool "chat" {
  model    = "%s"
  nodes    = ["local"]
  replicas = %d
  slots    = 1
  ctx_size = 256
}
`

func (w *world) watchFleetBody(model string, replicas int) []byte {
	return []byte(fmt.Sprintf(watchFleet, w.vars["HIVE_PORT"], model, replicas))
}

// poolWorkers lists the hive's workers of pool, and how many of them are ready.
func (w *world) poolWorkers(pool string) (ready int, all []hiveapi.WorkerStatus, err error) {
	c, err := w.localHive()
	if err != nil {
		return 0, nil, err
	}
	workers, err := hiveWorkers(c)
	if err != nil {
		return 0, nil, err
	}
	for _, ws := range workers {
		if ws.Pool != pool && !strings.HasPrefix(ws.ID, pool+"-") {
			continue
		}
		all = append(all, ws)
		if hiveapi.Ready(ws.State) {
			ready++
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	return ready, all, nil
}

// poolPIDs lists the workers of pool as "id=pid,id=pid", sorted by id.
func (w *world) poolPIDs(pool string) (string, error) {
	_, all, err := w.poolWorkers(pool)
	if err != nil {
		return "", err
	}
	var pids []string
	for _, ws := range all {
		pids = append(pids, ws.ID+"="+strconv.Itoa(ws.PID))
	}
	return strings.Join(pids, ","), nil
}

// daemonStatus reads GET /v1/status of the scenario's daemon.
func (w *world) daemonStatus() (map[string]any, error) {
	resp, err := http.Get("http://127.0.0.1:" + w.vars["WATCH_PORT"] + "/v1/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	return st, nil
}

func jsonText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return "null"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// watchDestroy destroys, after the scenario (and after the daemon has been
// stopped), whatever the daemon applied.
var watchDestroy = []string{"rbee destroy -auto-approve -lock-timeout 30s"}

// daemon returns the running daemon's process.
func (w *world) daemon() (*bgProc, error) { return w.proc("daemon") }

func registerWatchSteps(sc *godog.ScenarioContext, w *world) {
	writeFleet := func(model string, replicas int) error {
		return os.WriteFile(filepath.Join(w.dir, "rbee.hcl"), w.watchFleetBody(model, replicas), 0o644)
	}
	sc.Step(`^a watched local fleet with (\d+) replicas?$`, func(n int) error {
		if err := w.localFleet(watchDestroy, "HIVE_PORT", "WATCH_PORT"); err != nil {
			return err
		}
		return writeFleet("tiny", n)
	})

	sc.Step(`^the daemon runs with "([^"]*)"$`, func(args string) error {
		if err := w.localFleet(watchDestroy, "WATCH_PORT"); err != nil {
			return err
		}
		line := "exec rbee watch --listen 127.0.0.1:${WATCH_PORT} " + args
		if _, err := w.startBackground("daemon", line); err != nil {
			return err
		}
		return untilOK(30*time.Second, func() error {
			if p, _ := w.daemon(); p != nil {
				select {
				case <-p.done:
					return backoffStop{fmt.Errorf("the daemon exited:\n%s", tail(p.out.String(), 20))}
				default:
				}
			}
			_, err := w.daemonStatus()
			return err
		})
	})

	sc.Step(`^I edit rbee.hcl in place to (\d+) replicas?$`, func(n int) error {
		// Truncate and write the same file, as editors without backup copies do.
		f, err := os.OpenFile(filepath.Join(w.dir, "rbee.hcl"), os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return err
		}
		if _, err := f.Write(w.watchFleetBody("tiny", n)); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
	sc.Step(`^I save rbee.hcl by rename with (\d+) replicas?$`, func(n int) error {
		// Write a temporary file and rename it over the original, as vim and IDEs do.
		tmp := filepath.Join(w.dir, ".rbee.hcl.swp")
		if err := os.WriteFile(tmp, w.watchFleetBody("tiny", n), 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, filepath.Join(w.dir, "rbee.hcl"))
	})
	sc.Step(`^I save rbee.hcl with the pool using model "([^"]*)"$`, func(model string) error {
		return writeFleet(model, 2)
	})

	sc.Step(`^the local hive comes to run (\d+) ready workers? of pool "([^"]*)"$`, func(want int, pool string) error {
		return untilOK(2*time.Minute, func() error {
			ready, all, err := w.poolWorkers(pool)
			if err != nil {
				return err
			}
			if ready != want || len(all) != want {
				return fmt.Errorf("the hive runs %d ready of %d workers of pool %s, want %d: %+v", ready, len(all), pool, want, all)
			}
			return nil
		})
	})
	sc.Step(`^I note the worker pids of pool "([^"]*)" as "([^"]*)"$`, func(pool, name string) error {
		pids, err := w.poolPIDs(pool)
		if err != nil {
			return err
		}
		w.vars[name] = pids
		return nil
	})
	sc.Step(`^the worker pids of pool "([^"]*)" are still "([^"]*)"$`, func(pool, want string) error {
		got, err := w.poolPIDs(pool)
		if err != nil {
			return err
		}
		if got != w.expand(want) {
			return fmt.Errorf("the workers of pool %s are %s, want them untouched: %s", pool, got, w.expand(want))
		}
		return nil
	})
	sc.Step(`^exactly (\d+) worker processes run from the scenario folder$`, func(want int) error {
		n := 0
		var seen []string
		for _, cmd := range testsshd.ProcessesUnder(w.dir) {
			if strings.Contains(cmd, " worker ") {
				n++
				seen = append(seen, cmd)
			}
		}
		if n != want {
			return fmt.Errorf("%d worker processes run, want %d:\n%s", n, want, strings.Join(seen, "\n"))
		}
		return nil
	})

	sc.Step(`^I kill -9 the local hive$`, func() error {
		b, err := os.ReadFile(filepath.Join(w.dir, ".rbee", "nodes", "local", "hive.pid"))
		if err != nil {
			return err
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return err
		}
		w.vars["KILLED_HIVE_PID"] = strconv.Itoa(pid)
		return killAndWait(pid, 10*time.Second)
	})
	sc.Step(`^a new local hive answers$`, func() error {
		return untilOK(2*time.Minute, func() error {
			c, err := w.localHive()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if _, err := c.Health(ctx); err != nil {
				return err
			}
			b, err := os.ReadFile(filepath.Join(w.dir, ".rbee", "nodes", "local", "hive.pid"))
			if err != nil {
				return err
			}
			if strings.TrimSpace(string(b)) == w.vars["KILLED_HIVE_PID"] {
				return errors.New("the hive that answers is the killed one")
			}
			return nil
		})
	})

	// statusText waits until the daemon status at path, as JSON text, passes check.
	statusText := func(path string, check func(got string) error) error {
		return untilOK(90*time.Second, func() error {
			st, err := w.daemonStatus()
			if err != nil {
				return err
			}
			v, err := jsonPath(st, path)
			if err != nil {
				return fmt.Errorf("the status has no %s: %v", path, st)
			}
			return check(jsonText(v))
		})
	}
	sc.Step(`^the daemon status "([^"]*)" (?:becomes|is) "((?:[^"\\]|\\.)*)"$`, func(path, want string) error {
		want = w.expand(unquote(want))
		return statusText(path, func(got string) error {
			if got != want {
				return fmt.Errorf("status %s = %s, want %s", path, got, want)
			}
			return nil
		})
	})
	sc.Step(`^the daemon status "([^"]*)" (?:comes to contain|contains) "((?:[^"\\]|\\.)*)"$`, func(path, want string) error {
		want = w.expand(unquote(want))
		return statusText(path, func(got string) error {
			if !strings.Contains(got, want) {
				return fmt.Errorf("status %s = %s, want it to contain %q", path, got, want)
			}
			return nil
		})
	})
	sc.Step(`^the daemon makes (\d+) more passes$`, func(n int) error {
		count := func() (int, error) {
			st, err := w.daemonStatus()
			if err != nil {
				return 0, err
			}
			v, _ := jsonPath(st, "reconciles")
			f, ok := v.(float64)
			if !ok {
				return 0, fmt.Errorf("status reconciles = %v", v)
			}
			return int(f), nil
		}
		start, err := count()
		if err != nil {
			return err
		}
		return untilOK(2*time.Minute, func() error {
			now, err := count()
			if err != nil {
				return err
			}
			if now < start+n+1 { // +1: the pass in progress when counting started may be counted already
				return fmt.Errorf("%d passes since, want %d", now-start, n+1)
			}
			return nil
		})
	})
	sc.Step(`^the daemon metrics contain "((?:[^"\\]|\\.)*)"$`, func(want string) error {
		want = unquote(want)
		return untilOK(30*time.Second, func() error {
			resp, err := http.Get("http://127.0.0.1:" + w.vars["WATCH_PORT"] + "/metrics")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			if !strings.Contains(string(b), want) {
				return fmt.Errorf("metrics lack %q:\n%s", want, grepLines(string(b), "rbee_watch"))
			}
			return nil
		})
	})
	sc.Step(`^the daemon output (?:comes to contain|contains) "((?:[^"\\]|\\.)*)"$`, func(want string) error {
		want = w.expand(unquote(want))
		p, err := w.daemon()
		if err != nil {
			return err
		}
		return untilOK(90*time.Second, func() error {
			if !strings.Contains(p.out.String(), want) {
				return fmt.Errorf("the daemon's output lacks %q:\n%s", want, tail(p.out.String(), 30))
			}
			return nil
		})
	})

	sc.Step(`^I hold the state lock as "([^"]*)"$`, func(op string) error {
		st, err := w.stateStore()
		if err != nil {
			return err
		}
		info, err := st.Lock(context.Background(), op, time.Minute)
		if err != nil {
			return err
		}
		w.vars["HELD_LOCK"] = info.ID
		return nil
	})
	sc.Step(`^I release the state lock$`, func() error {
		st, err := w.stateStore()
		if err != nil {
			return err
		}
		return st.Unlock(context.Background(), w.vars["HELD_LOCK"])
	})
	sc.Step(`^the state is not locked and lists (\d+) workers?$`, func(want int) error {
		st, err := w.stateStore()
		if err != nil {
			return err
		}
		if l, err := st.CurrentLock(context.Background()); err != nil || l != nil {
			return fmt.Errorf("the state is locked (%v) or unreadable (%v)", l, err)
		}
		snap, err := st.Snapshot(context.Background())
		if err != nil {
			return err
		}
		if len(snap.Workers) != want {
			return fmt.Errorf("the state records %d workers, want %d: %v", len(snap.Workers), want, snap.Addrs())
		}
		return nil
	})

	sc.Step(`^I send SIGTERM to the daemon while it applies$`, func() error {
		p, err := w.daemon()
		if err != nil {
			return err
		}
		if err := untilOK(2*time.Minute, func() error {
			st, err := w.daemonStatus()
			if err != nil {
				return err
			}
			if ph, _ := jsonPath(st, "phase"); ph != "applying" {
				return fmt.Errorf("the daemon is %v, not applying", ph)
			}
			return nil
		}); err != nil {
			return err
		}
		return syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	})
	sc.Step(`^the daemon exits with code (\d+)$`, func(code int) error {
		p, err := w.daemon()
		if err != nil {
			return err
		}
		select {
		case <-p.done:
		case <-time.After(2 * time.Minute):
			return fmt.Errorf("the daemon still runs after the signal:\n%s", tail(p.out.String(), 20))
		}
		if got := p.cmd.ProcessState.ExitCode(); got != code {
			return fmt.Errorf("the daemon exited with %d, want %d:\n%s", got, code, tail(p.out.String(), 20))
		}
		return nil
	})
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

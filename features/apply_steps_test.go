package features

// Steps of the @apply scenarios: look at what the hives that apply installed
// actually run, through their HTTP API, and break them out of band.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cucumber/godog"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/internal/testsshd"
)

func init() { stepSets = append(stepSets, registerApplySteps) }

// hiveOf returns a client for the hive apply installed on test host name
// (its token is read from the install dir, as an operator would).
func (w *world) hiveOf(name string) (*hiveapi.Client, error) {
	prefix := varPrefix(name)
	host, port, dir := w.vars[prefix+"_HOST"], w.vars[prefix+"_HIVE_PORT"], w.vars[prefix+"_DIR"]
	if host == "" {
		return nil, fmt.Errorf("no test host %q in this scenario", name)
	}
	tok, _ := os.ReadFile(filepath.Join(dir, "hive.token"))
	return hiveapi.NewClient("http://"+host+":"+port, strings.TrimSpace(string(tok))), nil
}

func (w *world) readyWorkers(name, pool string) (int, []hiveapi.WorkerStatus, error) {
	c, err := w.hiveOf(name)
	if err != nil {
		return 0, nil, err
	}
	workers, err := hiveWorkers(c)
	if err != nil {
		return 0, nil, err
	}
	n := 0
	var mine []hiveapi.WorkerStatus
	for _, ws := range workers {
		if ws.Pool != pool {
			continue
		}
		mine = append(mine, ws)
		if hiveapi.Ready(ws.State) {
			n++
		}
	}
	return n, mine, nil
}

func registerApplySteps(sc *godog.ScenarioContext, w *world) {
	sc.Step(`^the hive on "([^"]*)" runs (\d+) ready workers? of pool "([^"]*)"$`, func(name string, want int, pool string) error {
		return eventually(2*time.Minute, func() error {
			n, all, err := w.readyWorkers(name, pool)
			if err != nil {
				return err
			}
			if n != want || len(all) != want {
				return fmt.Errorf("hive on %s: %d ready of %d workers of pool %s, want %d: %+v", name, n, len(all), pool, want, all)
			}
			return nil
		})
	})
	sc.Step(`^only the hive runs from "([^"]*)"$`, func(dir string) error {
		dir = w.expand(dir)
		return eventually(30*time.Second, func() error {
			procs := testsshd.ProcessesUnder(dir)
			hives := 0
			for pid, cmd := range procs {
				if !strings.Contains(cmd, " hive ") {
					return fmt.Errorf("process %d still runs from %s: %s", pid, dir, cmd)
				}
				hives++
			}
			if hives != 1 {
				return fmt.Errorf("%d hives run from %s, want 1: %v", hives, dir, procs)
			}
			return nil
		})
	})
	sc.Step(`^"([^"]*)" prints "((?:[^"\\]|\\.)*)"$`, func(name, want string) error {
		p, err := w.proc(name)
		if err != nil {
			return err
		}
		want = w.expand(unquote(want))
		deadline := time.Now().Add(2 * time.Minute)
		for !strings.Contains(p.out.String(), want) {
			select {
			case <-p.done:
				if strings.Contains(p.out.String(), want) {
					return nil
				}
				return fmt.Errorf("%s ended without printing %q:\n%s", name, want, tail(p.out.String(), 20))
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s has not printed %q:\n%s", name, want, tail(p.out.String(), 20))
			}
		}
		return nil
	})
	sc.Step(`^the hive on "([^"]*)" answers$`, func(name string) error {
		c, err := w.hiveOf(name)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = c.Health(ctx)
		return err
	})
	sc.Step(`^the hive on "([^"]*)" does not answer$`, func(name string) error {
		c, err := w.hiveOf(name)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := c.Health(ctx); err == nil {
			return fmt.Errorf("the hive on %s answers", name)
		}
		return nil
	})
	sc.Step(`^the hive on "([^"]*)" is killed$`, func(name string) error {
		prefix := varPrefix(name)
		b, err := os.ReadFile(filepath.Join(w.vars[prefix+"_DIR"], "hive.pid"))
		if err != nil {
			return err
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return err
		}
		// SIGKILL: the hive gets no chance to stop its workers, like a crash.
		return killAndWait(pid, 10*time.Second)
	})
}

package features

// Steps of the etcd state scenarios: real etcd servers (testetcd) on
// loopback, one member or a three-member cluster on 127.0.0.1-3, with data
// in the scenario folder and killed after it; a named pipe that answers apply's question when the scenario says so;
// and comparisons of Pebble states.

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cucumber/godog"

	"github.com/rbee-dev/rbee/applier"
	"github.com/rbee-dev/rbee/internal/testetcd"
	"github.com/rbee-dev/rbee/state"
)

func init() { stepSets = append(stepSets, registerEtcdSteps) }

// etcdClusters are each scenario's etcd clusters by name.
var etcdClusters = map[*world]map[string]*testetcd.Cluster{}

func registerEtcdSteps(sc *godog.ScenarioContext, w *world) {
	sc.Step(`^an etcd server as "([^"]*)"$`, func(name string) error { return w.startEtcd(name, []string{"127.0.0.1"}) })
	sc.Step(`^a three-member etcd cluster on 127\.0\.0\.1-3 as "([^"]*)"$`, func(name string) error {
		return w.startEtcd(name, []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"})
	})
	sc.Step(`^etcd member (\d+) of "([^"]*)" is killed$`, func(i int, name string) error {
		c := etcdClusters[w][name]
		if c == nil {
			return fmt.Errorf("no etcd cluster %q", name)
		}
		return c.Kill(i - 1)
	})
	sc.Step(`^a named pipe "([^"]*)" held open$`, func(name string) error {
		p := filepath.Join(w.dir, name)
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			return err
		}
		// Read-write, so neither side blocks opening it and the reader sees
		// no end of file until the scenario ends.
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		w.vars["PIPE_"+strings.ToUpper(strings.TrimSuffix(name, filepath.Ext(name)))] = p
		pipes[w] = append(pipes[w], f)
		w.onCleanup(func() { f.Close() })
		return nil
	})
	sc.Step(`^I write "([^"]*)" to the pipe "([^"]*)"$`, func(line, name string) error {
		for _, f := range pipes[w] {
			if filepath.Base(f.Name()) == name {
				_, err := io.WriteString(f, line+"\n")
				return err
			}
		}
		return fmt.Errorf("no pipe %q", name)
	})
	sc.Step(`^I kill -9 "([^"]*)"$`, func(name string) error {
		p, err := w.proc(name)
		if err != nil {
			return err
		}
		return killAndWait(p.cmd.Process.Pid, 10*time.Second)
	})
	sc.Step(`^the hive with pid file "([^"]*)" is stopped$`, func(file string) error {
		b, err := os.ReadFile(filepath.Join(w.dir, file))
		if err != nil {
			return err
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			return fmt.Errorf("the pid file holds %q", b)
		}
		return killAndWait(pid, 20*time.Second)
	})
	sc.Step(`^the Pebble states in "([^"]*)" and "([^"]*)" are identical$`, func(a, b string) error {
		return w.sameStates(filepath.Join(w.dir, a), filepath.Join(w.dir, b))
	})
	sc.Step(`^"([^"]*)" exits$`, func(name string) error {
		p, err := w.proc(name)
		if err != nil {
			return err
		}
		select {
		case <-p.done:
			return nil
		case <-time.After(3 * time.Minute):
			return fmt.Errorf("%s still runs:\n%s", name, tail(p.out.String(), 20))
		}
	})
}

// pipes are the named pipes each scenario holds open.
var pipes = map[*world][]*os.File{}

// startEtcd starts one member per host, sets ${NAME_URL} (the first
// member's client URL) and ${NAME_ENDPOINTS} (every client URL, quoted and
// comma-separated for an HCL list); the members are killed after the
// scenario, after whatever the scenario registers later (a fleet's destroy).
func (w *world) startEtcd(name string, hosts []string) error {
	c, err := testetcd.Start(w.dir, hosts...)
	if err != nil {
		return err
	}
	if etcdClusters[w] == nil {
		etcdClusters[w] = map[string]*testetcd.Cluster{}
	}
	etcdClusters[w][name] = c
	w.onCleanup(func() {
		c.Stop()
		delete(etcdClusters, w)
		delete(pipes, w)
	})
	w.vars[name+"_URL"] = c.Endpoints[0]
	w.vars[name+"_ENDPOINTS"] = `"` + strings.Join(c.Endpoints, `", "`) + `"`
	return nil
}

// sameStates compares two Pebble state folders: lineage, serial, every
// record and the hive tokens.
func (w *world) sameStates(a, b string) error {
	ctx := context.Background()
	var snaps [2]*state.Snapshot
	for i, dir := range []string{a, b} {
		st, err := state.Open(ctx, dir, state.Options{})
		if err != nil {
			return err
		}
		if snaps[i], err = st.Snapshot(ctx); err != nil {
			return err
		}
	}
	if snaps[0].Len() == 0 {
		return fmt.Errorf("the state in %s is empty", a)
	}
	if !reflect.DeepEqual(snaps[0], snaps[1]) {
		return fmt.Errorf("the states differ:\n%s: lineage %s serial %d, %d records\n%s: lineage %s serial %d, %d records",
			a, snaps[0].Lineage, snaps[0].Serial, snaps[0].Len(), b, snaps[1].Lineage, snaps[1].Serial, snaps[1].Len())
	}
	for name := range snapNodes(snaps[0]) {
		ta, err := applier.NewTokens(a).Get(name)
		if err != nil {
			return err
		}
		tb, err := applier.NewTokens(b).Get(name)
		if err != nil {
			return err
		}
		if ta == "" || ta != tb {
			return fmt.Errorf("the hive token of node %s differs (or is missing)", name)
		}
	}
	return nil
}

func snapNodes(s *state.Snapshot) map[string]bool {
	out := map[string]bool{}
	for _, n := range s.Nodes {
		out[n.Name] = true
	}
	return out
}

func init() {
	stepSets = append(stepSets, func(sc *godog.ScenarioContext, w *world) {
		// HIVE_PORT is free; whatever apply started is destroyed from each
		// folder afterwards, and nothing started in the scenario folder is
		// left running.
		sc.Step(`^a local fleet destroyed from "([^"]*)" and "([^"]*)"$`, func(a, b string) error {
			return w.localFleet([]string{"cd " + a + " && rbee destroy -auto-approve", "cd " + b + " && rbee destroy -auto-approve"}, "HIVE_PORT")
		})
	})
}

package features

// A real OpenSSH server per test "host" (internal/testsshd): an sshd bound to
// its own loopback address (127.0.0.2, 127.0.0.3, ...) with a generated host
// key, a private authorized_keys file and a known_hosts entry, so apply's SSH
// code path runs exactly as it would against a remote machine.
//
// Steps:
//   an SSH host "n1" on 127.0.0.2            starts sshd; sets ${N1_HOST} ${N1_PORT}
//                                            ${N1_DIR} (an install dir of its own) and
//                                            ${N1_HIVE_PORT} (a free port on that address),
//                                            plus ${SSH_KEY} ${SSH_USER} ${KNOWN_HOSTS}
//   an unreachable SSH host "n2" on 127.0.0.3 the same variables, nothing listens
//   an SSH key that no host accepts           sets ${WRONG_KEY}
//   the SSH host "n1" is stopped              stops its sshd
//   no process runs from "${N1_DIR}"          nothing executes a file under that folder
//   the folder "${N1_DIR}" does not exist
//
// Every process whose executable lies in the scenario folder is stopped after
// the scenario, so hives that apply started detached do not outlive it.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cucumber/godog"

	"github.com/rbee-dev/rbee/internal/testsshd"
)

func init() { stepSets = append(stepSets, registerSSHSteps) }

// sshState is the per-scenario SSH harness.
type sshState struct {
	keys    *testsshd.Keys
	servers map[string]*testsshd.Server
}

// sshStates holds each running scenario's harness (scenarios run one at a time).
var (
	sshMu     sync.Mutex
	sshStates = map[*world]*sshState{}
)

// ssh returns the scenario's client keys, creating them on first use.
func (w *world) ssh() (*sshState, error) {
	sshMu.Lock()
	defer sshMu.Unlock()
	if st, ok := sshStates[w]; ok {
		return st, nil
	}
	keys, err := testsshd.NewKeys(filepath.Join(w.dir, "ssh"))
	if err != nil {
		return nil, err
	}
	st := &sshState{keys: keys, servers: map[string]*testsshd.Server{}}
	sshStates[w] = st
	w.vars["SSH_KEY"] = keys.ClientKey
	w.vars["KNOWN_HOSTS"] = keys.KnownHosts
	w.vars["SSH_USER"] = keys.User
	dir := w.dir
	w.onCleanup(func() {
		for _, s := range st.servers {
			s.Stop()
		}
		testsshd.StopProcessesUnder(dir)
	})
	return st, nil
}

var nonWord = regexp.MustCompile(`[^A-Za-z0-9]+`)

func varPrefix(name string) string { return strings.ToUpper(nonWord.ReplaceAllString(name, "_")) }

// hostVars sets ${<NAME>_HOST}, _DIR and _HIVE_PORT for a test host.
func (w *world) hostVars(name, addr string) error {
	p := varPrefix(name)
	hivePort, err := testsshd.FreePort(addr)
	if err != nil {
		return err
	}
	w.vars[p+"_HOST"] = addr
	w.vars[p+"_HIVE_PORT"] = strconv.Itoa(hivePort)
	w.vars[p+"_DIR"] = filepath.Join(w.dir, "hosts", name)
	return nil
}

func registerSSHSteps(sc *godog.ScenarioContext, w *world) {
	sc.After(func(ctx context.Context, _ *godog.Scenario, err error) (context.Context, error) {
		sshMu.Lock()
		st := sshStates[w]
		delete(sshStates, w)
		sshMu.Unlock()
		if st != nil && err != nil {
			for name, s := range st.servers {
				fmt.Fprintf(os.Stderr, "--- sshd %s:\n%s\n", name, tail(s.Log.String(), 30))
			}
		}
		return ctx, nil
	})
	sc.Step(`^an SSH host "([^"]*)" on ([0-9.]+)$`, func(name, addr string) error {
		st, err := w.ssh()
		if err != nil {
			return err
		}
		if err := w.hostVars(name, addr); err != nil {
			return err
		}
		s, err := st.keys.Start(name, addr, filepath.Join(w.dir, "sshd", name))
		if err != nil {
			return err
		}
		st.servers[name] = s
		w.vars[varPrefix(name)+"_PORT"] = strconv.Itoa(s.Port)
		return nil
	})
	sc.Step(`^an unreachable SSH host "([^"]*)" on ([0-9.]+)$`, func(name, addr string) error {
		if _, err := w.ssh(); err != nil {
			return err
		}
		if err := w.hostVars(name, addr); err != nil {
			return err
		}
		port, err := testsshd.FreePort(addr)
		if err != nil {
			return err
		}
		w.vars[varPrefix(name)+"_PORT"] = strconv.Itoa(port)
		return nil
	})
	sc.Step(`^an SSH key that no host accepts$`, func() error {
		st, err := w.ssh()
		if err != nil {
			return err
		}
		key, err := st.keys.NewKey("id_wrong")
		w.vars["WRONG_KEY"] = key
		return err
	})
	sc.Step(`^the SSH host "([^"]*)" is stopped$`, func(name string) error {
		st, err := w.ssh()
		if err != nil {
			return err
		}
		s, ok := st.servers[name]
		if !ok {
			return fmt.Errorf("no SSH host %q in this scenario", name)
		}
		s.Stop()
		return nil
	})
	sc.Step(`^no process runs from "([^"]*)"$`, func(dir string) error {
		dir = w.expand(dir)
		return eventually(15*time.Second, func() error {
			if pids := testsshd.ProcessesUnder(dir); len(pids) > 0 {
				return fmt.Errorf("processes still run from %s: %v", dir, pids)
			}
			return nil
		})
	})
	sc.Step(`^the folder "([^"]*)" does not exist$`, func(dir string) error {
		dir = w.expand(dir)
		if _, err := os.Stat(dir); err == nil {
			return fmt.Errorf("%s still exists", dir)
		}
		return nil
	})
}

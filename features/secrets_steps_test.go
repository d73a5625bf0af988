package features

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cucumber/godog"
)

func init() { stepSets = append(stepSets, registerSecretsSteps) }

// registerSecretsSteps are the steps of secrets.feature: where a sensitive
// value may be (the hive's env file, the environment of the hive and its
// workers) and where it must not (every other file, command lines).
func registerSecretsSteps(sc *godog.ScenarioContext, w *world) {
	sc.Step(`^a local node "local" on a free hive port$`, func() error {
		if err := w.localFleet([]string{"rbee destroy -auto-approve"}, "HIVE_PORT"); err != nil {
			return err
		}
		w.vars["LOCAL_HOST"], w.vars["LOCAL_HIVE_PORT"] = "127.0.0.1", w.vars["HIVE_PORT"]
		w.vars["LOCAL_DIR"] = filepath.Join(w.dir, ".rbee", "nodes", "local")
		return nil
	})
	sc.Step(`^no file under "([^"]*)"(?: but "([^"]*)")? contains "([^"]*)"$`, func(dir, except, text string) error {
		return w.noFileContains(w.expand(dir), w.expand(except), w.expand(text))
	})
	sc.Step(`^the file "([^"]*)" has mode (0[0-7]{3}) and contains "([^"]*)"$`, func(name, mode, text string) error {
		p := filepath.Join(w.dir, w.expand(name))
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if got := fmt.Sprintf("%04o", fi.Mode().Perm()); got != mode {
			return fmt.Errorf("%s has mode %s, want %s", name, got, mode)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), w.expand(text)) {
			return fmt.Errorf("%s does not contain %q", name, text)
		}
		return nil
	})
	sc.Step(`^no command line in "ps -eo args" contains "([^"]*)"$`, func(text string) error {
		out, err := exec.Command("ps", "-eo", "args").Output()
		if err != nil {
			return fmt.Errorf("ps -eo args: %w", err)
		}
		if bytes.Count(out, []byte("\n")) < 3 {
			return fmt.Errorf("ps -eo args listed too little to judge:\n%s", out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, w.expand(text)) {
				return fmt.Errorf("a command line holds the value: %s", line)
			}
		}
		return nil
	})
	sc.Step(`^the workers of the hive on "([^"]*)" have "([^"]*)" in their environment$`, func(name, kv string) error {
		return w.envOfWorkers(name, w.expand(kv))
	})
}

// noFileContains walks root (a file or a folder, relative to the scenario
// folder) and fails on a file holding text, except the one at except
// (relative to root).
func (w *world) noFileContains(root, except, text string) error {
	root = filepath.Join(w.dir, root)
	files, found := 0, []string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		if rel, _ := filepath.Rel(root, p); except != "" && rel == except {
			return nil
		}
		files++
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(text)) {
			found = append(found, p)
		}
		return nil
	})
	switch {
	case err != nil:
		return err
	case files == 0:
		return fmt.Errorf("no file under %s: nothing was checked", root)
	case len(found) > 0:
		return fmt.Errorf("%d of %d files hold the value: %s", len(found), files, strings.Join(found, ", "))
	}
	return nil
}

// envOfWorkers checks /proc/PID/environ of every worker the node's hive
// reports. (The hive's own environ is the one it was started with: it
// adds its env file's pairs to the environment it gives workers.)
func (w *world) envOfWorkers(name, kv string) error {
	return eventually(time.Minute, func() error {
		c, err := w.hiveOf(name)
		if err != nil {
			return err
		}
		workers, err := hiveWorkers(c)
		if err != nil {
			return err
		}
		var pids []int
		for _, ws := range workers {
			if ws.PID == 0 {
				return fmt.Errorf("worker %s has no pid yet", ws.ID)
			}
			pids = append(pids, ws.PID)
		}
		if len(pids) == 0 {
			return fmt.Errorf("the hive on %s runs no worker", name)
		}
		for _, pid := range pids {
			if err := hasEnv(pid, kv); err != nil {
				return err
			}
		}
		return nil
	})
}

// hasEnv fails unless process pid has kv (NAME=value) in its environment;
// the error names the variable, not its value.
func hasEnv(pid int, kv string) error {
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return err
	}
	if !bytes.Contains(append([]byte{0}, env...), []byte("\x00"+kv+"\x00")) {
		return fmt.Errorf("process %d lacks %s in its environment", pid, strings.SplitN(kv, "=", 2)[0])
	}
	return nil
}

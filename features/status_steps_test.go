package features

// Steps of the @status and @logs scenarios: the local fleet's hive stopped
// under the CLI's feet, JSON paths in stdout, and background output that
// changes over time (rbee status --watch, rbee logs -f).

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cucumber/godog"
)

func init() { stepSets = append(stepSets, registerStatusSteps) }

func registerStatusSteps(sc *godog.ScenarioContext, w *world) {
	sc.Step(`^the local hive is stopped$`, func() error {
		b, err := os.ReadFile(filepath.Join(w.dir, ".rbee", "nodes", "local", "hive.pid"))
		if err != nil {
			return fmt.Errorf("the hive's pid file apply writes: %w", err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			return fmt.Errorf("the hive's pid file holds %q", b)
		}
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			return err
		}
		return eventually(40*time.Second, func() error {
			if syscall.Kill(pid, 0) == nil {
				return fmt.Errorf("hive %d still runs", pid)
			}
			return nil
		})
	})
	sc.Step(`^stdout JSON "([^"]*)" is "([^"]*)"$`, func(path, want string) error {
		var doc any
		if err := json.Unmarshal([]byte(w.stdout), &doc); err != nil {
			return fmt.Errorf("stdout is not one JSON document: %v\n%s", err, tail(w.stdout, 20))
		}
		v, err := jsonPath(doc, path)
		if err != nil {
			return fmt.Errorf("%v in\n%s", err, w.stdout)
		}
		if got := fmt.Sprint(v); got != w.expand(want) {
			return fmt.Errorf("%s = %s, want %s", path, got, w.expand(want))
		}
		return nil
	})
	sc.Step(`^the output of "([^"]*)" comes to match "((?:[^"\\]|\\.)*)"$`, func(name, pattern string) error {
		p, err := w.proc(name)
		if err != nil {
			return err
		}
		re, err := regexp.Compile(unquote(pattern))
		if err != nil {
			return err
		}
		return eventually(time.Minute, func() error {
			if re.MatchString(p.out.String()) {
				return nil
			}
			select {
			case <-p.done:
				return backoffStop{fmt.Errorf("%s ended without matching %q:\n%s", name, pattern, tail(p.out.String(), 20))}
			default:
			}
			return errors.New("no match yet")
		})
	})
	sc.Step(`^the output of "([^"]*)" has (\d+) or more lines matching "((?:[^"\\]|\\.)*)"$`, func(name string, n int, pattern string) error {
		p, err := w.proc(name)
		if err != nil {
			return err
		}
		re, err := regexp.Compile("(?m)" + unquote(pattern))
		if err != nil {
			return err
		}
		return eventually(time.Minute, func() error {
			if got := len(re.FindAllString(p.out.String(), -1)); got < n {
				return fmt.Errorf("%d lines match %q, want %d:\n%s", got, pattern, n, tail(p.out.String(), 20))
			}
			return nil
		})
	})
}

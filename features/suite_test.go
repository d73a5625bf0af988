// Package features runs the Gherkin scenarios in this folder against the real
// rbee binary with godog. Each area adds its steps in its own *_steps_test.go
// file through an init() that appends to stepSets.
package features

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cucumber/godog"

	"github.com/rbee-dev/rbee/internal/testsshd"
)

// rbeeBin is the binary under test: $RBEE_BIN, or one built by TestMain.
var rbeeBin string

// stepSets are the per-area step registrations (worker, hive, plan, ...).
var stepSets []func(sc *godog.ScenarioContext, w *world)

var tags = flag.String("godog.tags", os.Getenv("RBEE_TAGS"), "godog tag expression, e.g. @worker")

func TestMain(m *testing.M) {
	flag.Parse()
	rbeeBin = os.Getenv("RBEE_BIN")
	if rbeeBin == "" {
		dir, err := os.MkdirTemp("", "rbee-features-bin")
		if err != nil {
			panic(err)
		}
		rbeeBin = filepath.Join(dir, "rbee")
		build := exec.Command("go", "build", "-o", rbeeBin, "../cmd/rbee")
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building rbee for the features:", err)
			os.Exit(1)
		}
	}
	abs, err := filepath.Abs(rbeeBin)
	if err != nil {
		panic(err)
	}
	rbeeBin = abs
	os.Exit(m.Run())
}

func TestFeatures(t *testing.T) {
	opts := godog.Options{
		Format:   "pretty",
		Paths:    []string{"."},
		Tags:     *tags,
		TestingT: t,
		Strict:   true,
	}
	if p := os.Getenv("RBEE_FEATURES"); p != "" {
		opts.Paths = strings.Fields(p)
	}
	suite := godog.TestSuite{
		ScenarioInitializer: func(sc *godog.ScenarioContext) {
			w := &world{vars: map[string]string{}}
			sc.Before(func(ctx context.Context, s *godog.Scenario) (context.Context, error) {
				return ctx, w.setup(s)
			})
			sc.After(func(ctx context.Context, s *godog.Scenario, err error) (context.Context, error) {
				w.teardown(err)
				return ctx, nil
			})
			registerCommonSteps(sc, w)
			for _, reg := range stepSets {
				reg(sc, w)
			}
		},
		Options: &opts,
	}
	if suite.Run() != 0 {
		t.Fatal("feature scenarios failed")
	}
}

// world is the state of one scenario: a private working folder, the last
// command's result, background processes and named values.
type world struct {
	dir  string            // scenario working directory, removed afterwards
	env  []string          // extra environment for commands
	vars map[string]string // ${NAME} substitutions in step text

	stdout, stderr string
	exit           int

	mu       sync.Mutex
	bg       map[string]*bgProc
	cleanups []func()
	destroys map[string]bool // destroy command lines registered by localFleet
}

// bgProc is a process started in the background by a step.
type bgProc struct {
	cmd  *exec.Cmd
	out  *testsshd.SyncBuffer
	done chan struct{}
}

func (w *world) setup(s *godog.Scenario) error {
	dir, err := os.MkdirTemp("", "rbee-scenario-")
	if err != nil {
		return err
	}
	w.dir = dir
	w.env = []string{"NO_COLOR=1", "HOME=" + os.Getenv("HOME")}
	w.vars = map[string]string{"DIR": dir, "RBEE": rbeeBin}
	w.bg = map[string]*bgProc{}
	w.cleanups = nil
	w.destroys = map[string]bool{}
	w.stdout, w.stderr, w.exit = "", "", 0
	return nil
}

// onCleanup registers f to run after the scenario, last registered first.
func (w *world) onCleanup(f func()) { w.cleanups = append(w.cleanups, f) }

// localFleet sets each of ports to a free loopback port (unless the scenario
// has one already) and makes sure that, after the scenario, whatever apply
// started from the scenario folder is destroyed with the destroy command
// lines, run in order, and nothing started there is left running. The same
// lines are registered once per scenario.
func (w *world) localFleet(destroy []string, ports ...string) error {
	for _, name := range ports {
		if w.vars[name] != "" {
			continue
		}
		port, err := testsshd.FreePort("127.0.0.1")
		if err != nil {
			return err
		}
		w.vars[name] = strconv.Itoa(port)
	}
	key := strings.Join(destroy, "\n")
	if w.destroys[key] {
		return nil
	}
	w.destroys[key] = true
	dir := w.dir
	w.onCleanup(func() {
		for _, line := range destroy {
			_ = w.run(line, 2*time.Minute)
		}
		testsshd.StopProcessesUnder(dir)
	})
	return nil
}

func (w *world) teardown(scenarioErr error) {
	for name, p := range w.bg {
		if scenarioErr != nil {
			fmt.Fprintf(os.Stderr, "--- output of background %q:\n%s\n", name, tail(p.out.String(), 40))
		}
		w.stopProc(p, 10*time.Second)
	}
	for i := len(w.cleanups) - 1; i >= 0; i-- {
		w.cleanups[i]()
	}
	if scenarioErr == nil || os.Getenv("RBEE_KEEP") == "" {
		os.RemoveAll(w.dir)
	}
}

// stopProc sends SIGTERM to the process group, then SIGKILL after grace.
func (w *world) stopProc(p *bgProc, grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

var varRe = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)\}`)

// expand replaces ${NAME} with scenario variables; unknown names stay as they are.
func (w *world) expand(s string) string {
	return varRe.ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := w.vars[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// command builds a bash command line run in the scenario folder, with the
// binary under test first on PATH as "rbee".
func (w *world) command(ctx context.Context, line string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "bash", "-c", w.expand(line))
	cmd.Dir = w.dir
	cmd.Env = append(os.Environ(), w.env...)
	cmd.Env = append(cmd.Env, "PATH="+filepath.Dir(rbeeBin)+":"+os.Getenv("PATH"))
	// Own process group so teardown can signal the whole tree; SIGKILL when
	// the test binary dies so an interrupted run leaves no daemon behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// run runs a command line to completion (bounded by timeout) and records its result.
func (w *world) run(line string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := w.command(ctx, line)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	err := cmd.Run()
	w.stdout, w.stderr = out.String(), errb.String()
	w.exit = 0
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("command %q did not finish within %s\nstdout:\n%s\nstderr:\n%s", line, timeout, tail(w.stdout, 30), tail(w.stderr, 30))
		}
		ee, ok := err.(*exec.ExitError)
		if !ok {
			return err
		}
		w.exit = ee.ExitCode()
	}
	return nil
}

// startBackground starts a command line and keeps it under name until the scenario ends.
func (w *world) startBackground(name, line string) (*bgProc, error) {
	cmd := w.command(context.Background(), line)
	out := &testsshd.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &bgProc{cmd: cmd, out: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	w.mu.Lock()
	w.bg[name] = p
	w.mu.Unlock()
	return p, nil
}

func (w *world) proc(name string) (*bgProc, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p, ok := w.bg[name]
	if !ok {
		return nil, fmt.Errorf("no background process named %q", name)
	}
	return p, nil
}

// eventually polls f every 100ms until it returns nil or a backoffStop, or
// timeout passes; the error then says how long it waited.
func eventually(timeout time.Duration, f func() error) error {
	err := untilOK(timeout, f)
	var stop backoffStop
	if err == nil || errors.As(err, &stop) {
		return err
	}
	return fmt.Errorf("after %s: %w", timeout, err)
}

// untilOK polls check every 100ms until it returns nil or a backoffStop, or
// bound passes (a bound on waiting, not a timing assertion), returning the
// last error as it is.
func untilOK(bound time.Duration, check func() error) error {
	deadline := time.Now().Add(bound)
	for {
		err := check()
		var stop backoffStop
		if err == nil || errors.As(err, &stop) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// backoffStop marks an error that retrying cannot fix.
type backoffStop struct{ error }

// killAndWait sends SIGKILL to pid, like a crash, and waits until the process
// is gone (a zombie counts as gone).
func killAndWait(pid int, timeout time.Duration) error {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	return eventually(timeout, func() error {
		if syscall.Kill(pid, 0) == nil {
			if st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !strings.Contains(string(st), ") Z ") {
				return fmt.Errorf("pid %d still runs", pid)
			}
		}
		return nil
	})
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func registerCommonSteps(sc *godog.ScenarioContext, w *world) {
	sc.Step(`^I run "([^"]*)"$`, func(line string) error { return w.run(line, 5*time.Minute) })
	sc.Step("^I run `([^`]*)`$", func(line string) error { return w.run(line, 5*time.Minute) })
	sc.Step(`^the exit code is (\d+)$`, func(code int) error {
		if w.exit != code {
			return fmt.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", w.exit, code, tail(w.stdout, 30), tail(w.stderr, 30))
		}
		return nil
	})
	sc.Step(`^the command (succeeds|fails)$`, func(which string) error {
		if (which == "succeeds") != (w.exit == 0) {
			return fmt.Errorf("exit code %d\nstdout:\n%s\nstderr:\n%s", w.exit, tail(w.stdout, 30), tail(w.stderr, 30))
		}
		return nil
	})
	for _, stream := range []string{"stdout", "stderr", "output"} {
		stream := stream
		get := func() string {
			switch stream {
			case "stdout":
				return w.stdout
			case "stderr":
				return w.stderr
			}
			return w.stdout + w.stderr
		}
		sc.Step(`^`+stream+` contains "((?:[^"\\]|\\.)*)"$`, func(want string) error {
			want = w.expand(unquote(want))
			if !strings.Contains(get(), want) {
				return fmt.Errorf("%s does not contain %q:\n%s", stream, want, tail(get(), 40))
			}
			return nil
		})
		sc.Step(`^`+stream+` does not contain "((?:[^"\\]|\\.)*)"$`, func(want string) error {
			want = w.expand(unquote(want))
			if strings.Contains(get(), want) {
				return fmt.Errorf("%s contains %q:\n%s", stream, want, tail(get(), 40))
			}
			return nil
		})
		sc.Step(`^`+stream+` matches "((?:[^"\\]|\\.)*)"$`, func(pattern string) error {
			re, err := regexp.Compile(unquote(pattern))
			if err != nil {
				return err
			}
			if !re.MatchString(get()) {
				return fmt.Errorf("%s does not match %q:\n%s", stream, pattern, tail(get(), 40))
			}
			return nil
		})
	}
	sc.Step(`^a file "([^"]*)" with:$`, func(name string, body *godog.DocString) error {
		p := filepath.Join(w.dir, w.expand(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, []byte(w.expand(body.Content)+"\n"), 0o644)
	})
	sc.Step(`^I start "([^"]*)" in the background as "([^"]*)"$`, func(line, name string) error {
		_, err := w.startBackground(name, line)
		return err
	})
	sc.Step(`^the environment variable "([^"]*)" is "([^"]*)"$`, func(k, v string) error {
		w.env = append(w.env, k+"="+w.expand(v))
		return nil
	})
}

func unquote(s string) string {
	if u, err := strconv.Unquote(`"` + s + `"`); err == nil {
		return u
	}
	return s
}

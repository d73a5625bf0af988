package features

// Steps for the hive's hardening scenarios (@hive): hostile local files, a
// filesystem that fills up, metrics checked by the real promtool, and a
// worker drained before it stops.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cucumber/godog"
)

func registerHiveHardeningSteps(sc *godog.ScenarioContext, hw *hiveWorld) {
	w := hw.w
	sc.Step(`^a folder "([^"]*)"$`, func(p string) error { return os.MkdirAll(w.expand(p), 0o755) })
	sc.Step(`^a named pipe "([^"]*)"$`, func(p string) error { return syscall.Mkfifo(w.expand(p), 0o600) })
	sc.Step(`^a symbolic link "([^"]*)" to "([^"]*)"$`, func(link, target string) error {
		return os.Symlink(w.expand(target), w.expand(link))
	})
	sc.Step(`^a file "([^"]*)" holding "([^"]*)"$`, func(p, content string) error {
		return os.WriteFile(w.expand(p), []byte(content+"\n"), 0o600)
	})
	sc.Step(`^the file "([^"]*)" is still there$`, func(p string) error {
		_, err := os.Stat(w.expand(p))
		return err
	})
	sc.Step(`^the started request answers (\d+)$`, func(code int) error {
		select {
		case h := <-hw.pending:
			hw.status, hw.header, hw.body, hw.events = h.status, h.header, h.body, h.events
		case <-time.After(3 * time.Minute):
			return errors.New("the request started in the background did not finish within 3 minutes")
		}
		if hw.status != code {
			return fmt.Errorf("status %d, want %d: %s", hw.status, code, hw.body)
		}
		return nil
	})
	sc.Step(`^the hive's data dir filesystem fills up$`, func() error { return fillUp(filepath.Join(hw.dataDir, "filler")) })
	sc.Step(`^the hive's data dir holds only a partial download for the model "([^"]*)"$`, func(name string) error {
		var files []string
		filepath.Walk(filepath.Join(hw.dataDir, "models", name), func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				files = append(files, filepath.Base(p))
			}
			return nil
		})
		if len(files) != 1 || !strings.HasSuffix(files[0], ".partial") {
			return fmt.Errorf("files of %s: %v, want one *.partial", name, files)
		}
		return nil
	})
	sc.Step(`^the hive's metrics pass "promtool check metrics" with no output$`, func() error {
		if err := hw.do(http.MethodGet, "/metrics", nil, hw.token, false); err != nil {
			return err
		}
		out, err := promtool(hw.body)
		if err != nil {
			return err
		}
		if out != "" {
			return fmt.Errorf("promtool check metrics:\n%s\non:\n%s", out, hw.body)
		}
		return nil
	})
	sc.Step(`^I start an inference of (\d+) tokens on the worker "([^"]*)"$`, func(n int, id string) error {
		ws, err := hw.worker(id)
		if err != nil {
			return err
		}
		done := make(chan inferOutcome, 1)
		hw.inference = done
		go func() {
			body := fmt.Sprintf(`{"prompt":"Once upon a time","max_tokens":%d,"ignore_eos":true,"temperature":0,"seed":1}`, n)
			resp, err := http.Post(ws.URL+"/v1/inference", "application/json", strings.NewReader(body))
			if err != nil {
				done <- inferOutcome{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			done <- inferOutcome{status: resp.StatusCode, body: b, err: err}
		}()
		return hw.expectWorker(id, "busy", -1, false)
	})
	sc.Step(`^I start a DELETE of "([^"]*)" on the hive$`, func(path string) error {
		h := &hiveWorld{w: w, url: hw.url}
		done := make(chan *hiveWorld, 1)
		hw.pending = done
		go func() {
			_ = h.do(http.MethodDelete, path, nil, hw.token, false)
			done <- h
		}()
		return nil
	})
	sc.Step(`^the inference ends with "([^"]*)"$`, func(want string) error {
		select {
		case r := <-hw.inference:
			if r.err != nil {
				return fmt.Errorf("the inference was cut: %v", r.err)
			}
			if r.status != http.StatusOK || !bytes.Contains(r.body, []byte(want)) || !bytes.Contains(r.body, []byte("[DONE]")) {
				return fmt.Errorf("inference %d without %q: %s", r.status, want, tail(string(r.body), 5))
			}
			return nil
		case <-time.After(3 * time.Minute):
			return errors.New("the inference did not finish within 3 minutes")
		}
	})
}

// inferOutcome is how a background inference ended.
type inferOutcome struct {
	status int
	body   []byte
	err    error
}

// fillUp writes to path until the filesystem is full.
func fillUp(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return nil
			}
			return err
		}
	}
}

// promtool runs `promtool check metrics` on an exposition and returns what
// it printed; it fails when promtool is not installed (Debian: prometheus).
func promtool(exposition []byte) (string, error) {
	path, err := exec.LookPath("promtool")
	if err != nil {
		return "", fmt.Errorf("promtool is not installed (apt-get install prometheus): %w", err)
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = bytes.NewReader(exposition)
	out, err := cmd.CombinedOutput()
	if err != nil && len(out) == 0 {
		return "", err
	}
	return string(out), nil
}

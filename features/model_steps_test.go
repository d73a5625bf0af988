package features

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/cucumber/godog"
	"github.com/rbee-dev/rbee/digest"
	"github.com/rbee-dev/rbee/gguf"
)

func init() { stepSets = append(stepSets, registerModelSteps) }

var printedSHA = regexp.MustCompile(`sha256: ([0-9a-f]{64})`)

func registerModelSteps(sc *godog.ScenarioContext, w *world) {
	path := func(name string) string { return filepath.Join(w.dir, w.expand(name)) }
	sc.Step(`^the file "([^"]*)" has the sha256 printed on stdout$`, func(name string) error {
		m := printedSHA.FindStringSubmatch(w.stdout)
		if m == nil {
			return fmt.Errorf("stdout has no sha256 line:\n%s", w.stdout)
		}
		got, err := fileSHA256(path(name))
		if err != nil {
			return err
		}
		if got != m[1] {
			return fmt.Errorf("%s has sha256 %s, stdout printed %s", name, got, m[1])
		}
		return nil
	})
	sc.Step(`^the files "([^"]*)" and "([^"]*)" (are identical|differ)$`, func(a, b, which string) error {
		da, err := os.ReadFile(path(a))
		if err != nil {
			return err
		}
		db, err := os.ReadFile(path(b))
		if err != nil {
			return err
		}
		if same := bytes.Equal(da, db); same != (which == "are identical") {
			return fmt.Errorf("%s (%d bytes) and %s (%d bytes): identical=%v, want %s", a, len(da), b, len(db), same, which)
		}
		return nil
	})
	sc.Step(`^the file "([^"]*)" does not exist$`, func(name string) error {
		if _, err := os.Stat(path(name)); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s exists (stat: %v)", name, err)
		}
		// No temporary leftovers either.
		matches, _ := filepath.Glob(filepath.Join(w.dir, "."+filepath.Base(name)+".*"))
		if len(matches) > 0 {
			return fmt.Errorf("temporary files left behind: %v", matches)
		}
		return nil
	})
	sc.Step(`^the preset "([^"]*)" written as a split model "([^"]*)" of (\d+) tensors a shard$`, func(preset, prefix string, n int) error {
		p, err := gguf.LookupPreset(preset)
		if err != nil {
			return err
		}
		_, err = p.Writer(gguf.DefaultSeed).WriteSplit(context.Background(), path(prefix), n)
		return err
	})
	sc.Step(`^stdout lists every shard of "([^"]*)" with its size and sha256$`, func(first string) error {
		for i, p := range gguf.ShardPaths(path(first)) {
			sum, size, err := digest.File(p)
			if err != nil {
				return err
			}
			want := fmt.Sprintf(`shard %d of \d+:\s+%s\s+\S+ \S+ \(%d bytes\)\s+sha256 %s`, i+1, regexp.QuoteMeta(filepath.Base(p)), size, sum)
			if !regexp.MustCompile(want).MatchString(w.stdout) {
				return fmt.Errorf("stdout has no line matching %q:\n%s", want, w.stdout)
			}
		}
		return nil
	})
	sc.Step(`^stdout's "([^"]*)" line is the one of "([^"]*)"$`, func(key, file string) error {
		out, err := exec.Command(rbeeBin, "model", "inspect", path(file)).Output()
		if err != nil {
			return fmt.Errorf("inspect %s: %w", file, err)
		}
		line := func(s string) string {
			for _, l := range strings.Split(s, "\n") {
				if strings.HasPrefix(l, key+":") {
					return l
				}
			}
			return ""
		}
		if got, want := line(w.stdout), line(string(out)); got == "" || got != want {
			return fmt.Errorf("%s line %q, want %q as for %s", key, got, want, file)
		}
		return nil
	})
	sc.Step(`^stdout is JSON with "([^"]*)" equal to "([^"]*)"$`, func(key, want string) error {
		var doc map[string]json.RawMessage
		if err := json.Unmarshal([]byte(w.stdout), &doc); err != nil {
			return fmt.Errorf("stdout is not a JSON object: %v\n%s", err, w.stdout)
		}
		raw, ok := doc[key]
		if !ok {
			return fmt.Errorf("JSON has no %q:\n%s", key, w.stdout)
		}
		var v any
		_ = json.Unmarshal(raw, &v)
		if got := fmt.Sprint(v); got != want {
			return fmt.Errorf("%s = %s, want %s", key, got, want)
		}
		return nil
	})
}

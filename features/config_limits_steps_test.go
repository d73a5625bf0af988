package features

// Steps that write hostile configuration files: text repeated many times
// (deep nesting, oversize values), old-Mac line endings and UTF-16.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/cucumber/godog"
)

func init() { stepSets = append(stepSets, registerConfigLimitSteps) }

// repeatRe matches {{TEXT * N}}: TEXT written N times.
var repeatRe = regexp.MustCompile(`\{\{(.+?) \* (\d+)\}\}`)

func expandRepeats(s string) string {
	return repeatRe.ReplaceAllStringFunc(s, func(m string) string {
		sub := repeatRe.FindStringSubmatch(m)
		n, _ := strconv.Atoi(sub[2])
		return strings.Repeat(sub[1], n)
	})
}

// encodings turn the text of a doc string into the bytes of a file.
var encodings = map[string]func(string) []byte{
	"with repetitions":  func(s string) []byte { return []byte(expandRepeats(s) + "\n") },
	"with CR line ends": func(s string) []byte { return []byte(strings.ReplaceAll(s+"\n", "\n", "\r")) },
	"in UTF-16 with": func(s string) []byte {
		b := []byte{0xFF, 0xFE}
		for _, c := range []byte(s + "\n") {
			b = append(b, c, 0)
		}
		return b
	},
}

func registerConfigLimitSteps(sc *godog.ScenarioContext, w *world) {
	write := func(name, how string, body *godog.DocString) error {
		p := filepath.Join(w.dir, w.expand(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		enc, ok := encodings[how]
		if !ok {
			return fmt.Errorf("unknown encoding %q", how)
		}
		return os.WriteFile(p, enc(w.expand(body.Content)), 0o644)
	}
	sc.Step(`^a file "([^"]*)" (with repetitions|with CR line ends|in UTF-16 with):$`, write)
	// Write a temporary file and rename it over the original, as editors do.
	sc.Step(`^I save "([^"]*)" by rename (with repetitions):$`, func(name, how string, body *godog.DocString) error {
		if err := write(name+".tmp", how, body); err != nil {
			return err
		}
		return os.Rename(filepath.Join(w.dir, name+".tmp"), filepath.Join(w.dir, name))
	})
	sc.Step(`^the file "([^"]*)" has no CR$`, func(name string) error {
		b, err := os.ReadFile(filepath.Join(w.dir, name))
		if err != nil {
			return err
		}
		if i := strings.IndexByte(string(b), '\r'); i >= 0 {
			return fmt.Errorf("%s has a CR at byte %d", name, i)
		}
		return nil
	})
}

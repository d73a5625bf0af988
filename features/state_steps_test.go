package features

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cucumber/godog"

	"github.com/rbee-dev/rbee/state"
)

func init() { stepSets = append(stepSets, registerStateSteps) }

// registerStateSteps are the steps of state_history.feature. The damage
// steps flip real bytes in the real Pebble files of the scenario's state.
func registerStateSteps(sc *godog.ScenarioContext, w *world) {
	sc.Step(`^every table of the state database has a flipped byte$`, func() error {
		files, err := stateFiles(w, ".sst")
		if err != nil {
			return err
		}
		for _, f := range files {
			if err := flipByte(f, 20); err != nil { // inside the first data block
				return err
			}
		}
		return nil
	})
	sc.Step(`^the last write in the state's write-ahead log is garbled$`, func() error {
		logs, err := stateFiles(w, ".log")
		if err != nil {
			return err
		}
		// past the 11-byte chunk header: the batch's keys, under its checksum
		return flipByte(logs[len(logs)-1], 30)
	})
	sc.Step(`^stdout is the JSON history of "([^"]*)" by this user$`, func(ops string) error {
		entries, err := historyJSON(w.stdout)
		if err != nil {
			return err
		}
		return checkHistory(entries, strings.Split(ops, ", "))
	})
	sc.Step(`^stderr has (\d+) lines?$`, func(n int) error {
		if got := strings.Count(strings.TrimSuffix(w.stderr, "\n"), "\n") + 1; got != n || w.stderr == "" {
			return fmt.Errorf("stderr has %d lines, want %d:\n%s", got, n, w.stderr)
		}
		return nil
	})
	sc.Step(`^stdout is (\d+) lines? of history JSON$`, func(n int) error {
		entries, err := historyJSON(w.stdout)
		if err != nil {
			return err
		}
		if len(entries) != n {
			return fmt.Errorf("%d entries, want %d:\n%s", len(entries), n, w.stdout)
		}
		return nil
	})
}

// stateFiles lists the files of the scenario's Pebble database whose names
// end in suffix, oldest first.
func stateFiles(w *world, suffix string) ([]string, error) {
	dir := filepath.Join(w.dir, ".rbee", state.DBDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), suffix) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s file in %s", suffix, dir)
	}
	slices.Sort(out)
	return out, nil
}

// flipByte inverts the byte at off of the file at path.
func flipByte(path string, off int) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if off >= len(b) {
		return fmt.Errorf("%s has %d bytes, fewer than %d", path, len(b), off+1)
	}
	b[off] ^= 0xff
	return os.WriteFile(path, b, 0o600)
}

// historyJSON decodes the NDJSON of rbee state history -json, refusing
// unknown fields so that the output and state.HistoryEntry stay one.
func historyJSON(out string) ([]state.HistoryEntry, error) {
	var entries []state.HistoryEntry
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		var e state.HistoryEntry
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("line %d is not a history entry: %v: %s", len(entries)+1, err, sc.Text())
		}
		entries = append(entries, e)
	}
	return entries, sc.Err()
}

// checkHistory checks that entries run newest first, were written by this
// user on this host, and that their operations, with runs of one operation
// counted once, are ops.
func checkHistory(entries []state.HistoryEntry, ops []string) error {
	u, err := user.Current()
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	var runs []string
	for i, e := range entries {
		if e.User != u.Username || e.Host != host || e.PID <= 0 || e.Time.IsZero() || e.Summary == "" {
			return fmt.Errorf("entry %d: who, when or summary: %+v", i, e)
		}
		if i > 0 && e.Serial >= entries[i-1].Serial {
			return fmt.Errorf("entry %d has serial %d after serial %d: not newest first", i, e.Serial, entries[i-1].Serial)
		}
		if e.Puts < len(e.Put) || e.Deletes < len(e.Deleted) || e.Puts+e.Deletes == 0 && e.Summary != "no records changed" {
			return fmt.Errorf("entry %d: counts do not match: %+v", i, e)
		}
		if len(runs) == 0 || runs[len(runs)-1] != e.Operation {
			runs = append(runs, e.Operation)
		}
	}
	if !slices.Equal(runs, ops) {
		return fmt.Errorf("operations newest first %q, want %q", runs, ops)
	}
	return nil
}

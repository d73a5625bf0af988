package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// damage collects what Pebble reports about damaged files while one
// database is open, so that the error a read returns can name the file.
type damage struct {
	mu   sync.Mutex
	file string
}

// listener reports on-disk corruption to d instead of Pebble's default, which
// ends the process with a stack trace.
func (d *damage) listener() *pebble.EventListener {
	return &pebble.EventListener{DataCorruption: func(info pebble.DataCorruptionInfo) {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.file == "" {
			d.file = filepath.Base(info.Path)
		}
	}}
}

func (d *damage) damagedFile() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.file
}

// firstLine is the first line of err's message, without Pebble's prefixes.
func firstLine(err error) string {
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return strings.TrimSpace(msg)
}

// isCorruption reports whether err says the database's files are damaged.
func isCorruption(err error) bool {
	return err != nil && (pebble.IsCorruptionError(err) || errors.Is(err, pebble.ErrCorruption))
}

// damaged is the error for a database whose files Pebble found damaged:
// what is wrong, where, and what to do.
func (s *Store) damaged(file string, cause error) error {
	what := "its files are damaged"
	if file != "" {
		what = file + " is damaged"
	}
	return fmt.Errorf("%w: the state database in %s cannot be read: %s (%s). Nothing was changed. %s",
		ErrCorrupt, s.dbPath(), what, firstLine(cause), s.restoreHint())
}

// restoreHint says how to recover a damaged or lost state.
func (s *Store) restoreHint() string {
	backup := filepath.Join(s.dir, BackupFile)
	if _, err := os.Stat(backup); err != nil {
		return fmt.Sprintf("There is no backup (%s) to restore; move %s aside and run rbee refresh, then rbee plan, to rebuild the state from the fleet", backup, s.dbPath())
	}
	return fmt.Sprintf("Run rbee state restore: it sets the damaged database aside and puts back the backup %s (the state before the last change); then run rbee refresh to record what the fleet runs now", backup)
}

// explain turns a Pebble corruption error from a read or write into one
// that says where and what to do; other errors pass unchanged.
func (s *Store) explain(err error, d *damage) error {
	if err == nil || errors.Is(err, ErrCorrupt) || !isCorruption(err) {
		return err
	}
	return s.damaged(d.damagedFile(), err)
}

// quiet discards Pebble's informational logging; errors surface as returned
// errors. Fatalf is for Pebble's broken invariants (it must not return):
// it says so in one line, without Pebble's stack trace, and exits.
type quiet struct{ dir string }

func (quiet) Infof(string, ...any)  {}
func (quiet) Errorf(string, ...any) {}
func (q quiet) Fatalf(format string, args ...any) {
	msg, _, _ := strings.Cut(fmt.Sprintf(format, args...), "\n")
	fmt.Fprintf(os.Stderr, "Error: the state database in %s failed and rbee stopped: %s. If it fails again, run rbee state restore to put back the backup %s\n",
		q.dir, strings.TrimSpace(msg), filepath.Join(filepath.Dir(q.dir), BackupFile))
	os.Exit(1)
}

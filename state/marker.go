package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// MarkerFile, in the state folder, records the last write rbee finished:
// Pebble tolerates a damaged end of its write-ahead log by dropping the
// writes there, so without it a lost write (a released lock, a recorded
// change) would go unnoticed. It also tells a deleted database from a state
// folder that never held one.
const MarkerFile = "state.commit.json"

// keyCommit counts every batch written (records, lock and unlock alike).
var keyCommit = []byte("meta/commit")

// ErrMissing marks the error for a state folder whose database is gone
// while the folder shows that it held one.
var ErrMissing = errors.New("state is missing")

// marker is MarkerFile's content.
type marker struct {
	Lineage string    `json:"lineage"`
	Commit  uint64    `json:"commit"`
	Serial  uint64    `json:"serial"`
	Time    time.Time `json:"time"`
}

func (s *Store) markerPath() string { return filepath.Join(s.dir, MarkerFile) }

// readMarker returns the marker, or nil when there is none. An unreadable
// marker is ignored (it only ever lags the database) and rewritten by the
// next write.
func (s *Store) readMarker() *marker {
	b, err := os.ReadFile(s.markerPath())
	if err != nil {
		return nil
	}
	var m marker
	if err := json.Unmarshal(b, &m); err != nil || m.Lineage == "" {
		s.opts.Logger.Warn("ignoring an unreadable state marker", "file", s.markerPath(), "err", err)
		return nil
	}
	return &m
}

func getUint(db *pebble.DB, key []byte) (uint64, error) {
	v, err := get(db, key)
	if err != nil || v == nil {
		return 0, err
	}
	n, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %q is unreadable", ErrCorrupt, key, v)
	}
	return n, nil
}

// commit writes b durably as the next numbered batch, then records the
// number in MarkerFile. The marker is written after the database, so a crash
// in between leaves it behind, never ahead.
func (s *Store) commit(db *pebble.DB, b *pebble.Batch) error {
	n, err := getUint(db, keyCommit)
	if err != nil {
		return err
	}
	_ = b.Set(keyCommit, []byte(strconv.FormatUint(n+1, 10)), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("writing state in %s: %w", s.dbPath(), err)
	}
	m := marker{Commit: n + 1, Time: time.Now().UTC()}
	lin, err := get(db, keyLineage)
	if err == nil {
		m.Lineage = string(lin)
		m.Serial, err = getUint(db, keySerial)
	}
	if err == nil {
		err = writeFileAtomic(s.markerPath(), m)
	}
	if err != nil {
		// The write itself is durable; a lagging marker only weakens the check.
		s.opts.Logger.Warn("the state marker was not updated", "file", s.markerPath(), "err", err)
	}
	return nil
}

// checkCommit fails when the database ends before the last write the marker
// records: the end of its write-ahead log was lost.
func (s *Store) checkCommit(db *pebble.DB) error {
	m := s.readMarker()
	if m == nil {
		return nil
	}
	lin, err := get(db, keyLineage)
	if err != nil || string(lin) != m.Lineage {
		return err // another state put in this folder: nothing to compare
	}
	n, err := getUint(db, keyCommit)
	if err != nil || n >= m.Commit {
		return err
	}
	return fmt.Errorf("%w: the state database in %s lost writes: it ends at write %d, but rbee finished write %d (serial %d) at %s, as %s records. Its write-ahead log is damaged, so records or the lock may be out of date. Nothing was changed. %s. If you put an older copy of the database there on purpose, delete %s instead",
		ErrCorrupt, s.dbPath(), n, m.Commit, m.Serial, m.Time.Local().Format(time.RFC3339), MarkerFile, s.restoreHint(), s.markerPath())
}

// checkMissing fails when the database is absent but the folder shows that
// it held one (a marker or a backup): the state was deleted or moved, and a
// new, empty state would make the next plan start again what runs.
func (s *Store) checkMissing() error {
	if s.allowFresh {
		return nil
	}
	held := ""
	backup := filepath.Join(s.dir, BackupFile)
	_, noBackup := os.Stat(backup)
	if m := s.readMarker(); m != nil {
		held = fmt.Sprintf(" (lineage %s, serial %d, last written %s)", m.Lineage, m.Serial, m.Time.Local().Format(time.RFC3339))
	} else if noBackup != nil {
		return nil
	}
	restore := "Run rbee state restore to put back the backup " + backup
	if noBackup != nil {
		restore = "Put back a copy of it with rbee state restore FILE"
	}
	return fmt.Errorf("%w: the state database %s is gone, but %s held a state%s: it was deleted or moved. Planning against an empty state would start again everything that still runs. %s, then rbee refresh to record what the fleet runs now. To start a new, empty state instead, delete %s and %s",
		ErrMissing, s.dbPath(), s.dir, held, restore, BackupFile, MarkerFile)
}

// writeFileAtomic writes v as JSON to path through a temporary file.
func writeFileAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

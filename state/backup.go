package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// writeBackup writes snap as JSON to <dir>/state.backup.json, atomically.
func (s *Store) writeBackup(snap *Snapshot) error {
	if err := writeFileAtomic(filepath.Join(s.dir, BackupFile), snap); err != nil {
		return fmt.Errorf("writing state backup: %w", err)
	}
	return nil
}

// ReadBackup reads a JSON state file such as BackupFile.
func ReadBackup(path string) (*Snapshot, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	snap := NewSnapshot()
	if err := json.Unmarshal(b, snap); err != nil {
		return nil, fmt.Errorf("%s is not an rbee state backup: %w", path, err)
	}
	return snap, nil
}

// Restore replaces every record with those of from in one batch; the serial
// goes on counting up. A backup of another state (a different lineage) is
// refused unless force is set; a new, empty state (the database was lost or
// set aside) takes the backup's lineage and serial, with no force needed.
// The caller holds the lock.
func (s *Store) Restore(ctx context.Context, from *Snapshot, force bool) error {
	cur, err := s.Snapshot(ctx)
	if err != nil {
		return err
	}
	if err := CheckRestore(cur, from, force); err != nil {
		return err
	}
	fresh := cur.Serial == 0 && cur.Len() == 0
	return s.Update(ctx, func(tx *Tx) error {
		if fresh && from.Lineage != "" {
			tx.lineage = from.Lineage
			tx.nextSerial = func(cur uint64) uint64 { return max(cur, from.Serial) + 1 }
		}
		return replaceAll(tx, cur, from)
	})
}

// CheckRestore is the rule every backend applies before restoring from over
// cur: a backup without a lineage, or of another state than a state that
// already holds something, is refused unless force is set.
func CheckRestore(cur, from *Snapshot, force bool) error {
	fresh := cur.Lineage == "" || (cur.Serial == 0 && cur.Len() == 0)
	switch {
	case force:
	case from.Lineage == "":
		return errors.New("the backup names no lineage, so it may not be an rbee state at all; restore it anyway with -force")
	case !fresh && cur.Lineage != from.Lineage:
		return fmt.Errorf("the backup belongs to another state (lineage %s, this state is %s); restore it anyway with -force", from.Lineage, cur.Lineage)
	}
	return nil
}

// PrepareRestore makes the state in dir ready for Restore when it cannot be
// read: a damaged database (unreadable files, lost writes, records that do
// not decode) is renamed aside, and a missing one is created new and empty,
// so that restoring the backup needs no force. It returns where the damaged
// database went, or "" when it left the database alone. A readable state is
// not touched.
func PrepareRestore(ctx context.Context, dir string, opts Options) (string, error) {
	s, err := newStore(dir, opts)
	if err != nil {
		return "", err
	}
	aside := ""
	if dbExists(s.dbPath()) {
		err := s.verify(ctx)
		if err == nil || !errors.Is(err, ErrCorrupt) {
			return "", err
		}
		aside = s.dbPath() + ".damaged-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(s.dbPath(), aside); err != nil {
			return "", fmt.Errorf("setting the damaged state database aside: %w", err)
		}
		s.opts.Logger.Info("set the damaged state database aside", "to", aside, "err", err)
	} else if err := s.checkMissing(); err == nil {
		return "", nil // nothing was ever here: the lock creates the database
	}
	s.allowFresh = true
	err = s.with(ctx, create, func(*pebble.DB) error { return nil })
	return aside, err
}

// verify reads every block of the database and decodes every record.
func (s *Store) verify(ctx context.Context) error {
	return s.view(ctx, func(db *pebble.DB) error {
		it, err := db.NewIter(nil)
		if err != nil {
			return err
		}
		for it.First(); it.Valid(); it.Next() {
			_ = it.Value()
		}
		if err := it.Close(); err != nil {
			return err
		}
		if _, err := readLock(db); err != nil {
			return err
		}
		return readSnapshot(db, NewSnapshot())
	})
}

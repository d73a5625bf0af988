package state

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Tx collects the writes of one Update.
type Tx struct {
	b   *pebble.Batch
	ops map[Addr][]byte // the stored value put, nil when deleted (the last write to each address wins)
	// lineage, when set, replaces the state's lineage (a restored or
	// imported state keeps its own); nextSerial, when set, gives the serial
	// after the write from the current one (default: one more).
	lineage    string
	nextSerial func(cur uint64) uint64
}

// Put writes a NodeRecord, ModelRecord or WorkerRecord (or a pointer to one).
func (tx *Tx) Put(r Record) error {
	key, val, err := EncodeRecord(r)
	if err != nil {
		return err
	}
	tx.ops[r.Addr()] = val
	return tx.b.Set([]byte(key), val, nil)
}

// Delete removes the record at a (no error if there is none).
func (tx *Tx) Delete(a Addr) error {
	if err := checkAddr(a); err != nil {
		return err
	}
	tx.ops[a] = nil
	return tx.b.Delete(a.key(), nil)
}

func (tx *Tx) sortedAddrs() []Addr {
	out := make([]Addr, 0, len(tx.ops))
	for a := range tx.ops {
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y Addr) int {
		switch {
		case x.Less(y):
			return -1
		case y.Less(x):
			return 1
		}
		return 0
	})
	return out
}

func checkAddr(a Addr) error {
	if _, err := ParseAddr(a.String()); err != nil {
		return fmt.Errorf("cannot store a record at %s: %w", a, err)
	}
	return nil
}

// Update applies the writes fn makes as one atomic batch, with the serial
// incremented once and a HistoryEntry saying who changed what, if anything
// was written. Callers that change the fleet should hold the lock (see Lock).
func (s *Store) Update(ctx context.Context, fn func(tx *Tx) error) error {
	return s.with(ctx, create, func(db *pebble.DB) error {
		tx := &Tx{b: db.NewBatch(), ops: map[Addr][]byte{}}
		defer tx.b.Close()
		if err := fn(tx); err != nil {
			return err
		}
		if len(tx.ops) == 0 && tx.lineage == "" {
			return nil
		}
		if err := s.backupBefore(db); err != nil {
			return err
		}
		n, err := getUint(db, keySerial)
		if err != nil {
			return err
		}
		serial := n + 1
		if tx.nextSerial != nil {
			serial = tx.nextSerial(n)
		}
		if tx.lineage != "" {
			_ = tx.b.Set(keyLineage, []byte(tx.lineage), nil)
		}
		entry, err := newEntry(db, tx, serial)
		if err != nil {
			return err
		}
		if err := recordHistory(tx.b, entry); err != nil {
			return err
		}
		_ = tx.b.Set(keySerial, []byte(strconv.FormatUint(serial, 10)), nil)
		_ = tx.b.Set(keyUpdated, []byte(entry.Time.Format(time.RFC3339Nano)), nil)
		return s.commit(db, tx.b)
	})
}

// backupBefore writes the state as it is to BackupFile when this is the
// first write under the lock. A state that never held anything (a new
// database) is not saved: there is nothing to go back to, and the backup
// there may be the very one being restored.
func (s *Store) backupBefore(db *pebble.DB) error {
	if !s.backupDue.Load() {
		return nil
	}
	before := NewSnapshot()
	if err := readSnapshot(db, before); err != nil {
		return err
	}
	if before.Serial > 0 || before.Len() > 0 {
		if err := s.writeBackup(before); err != nil {
			return err
		}
	}
	s.backupDue.Store(false)
	return nil
}

// Put writes records in one batch (one serial increment).
func (s *Store) Put(ctx context.Context, records ...Record) error {
	return s.Update(ctx, func(tx *Tx) error {
		for _, r := range records {
			if err := tx.Put(r); err != nil {
				return err
			}
		}
		return nil
	})
}

// Delete removes the records at addrs in one batch.
func (s *Store) Delete(ctx context.Context, addrs ...Addr) error {
	return s.Update(ctx, func(tx *Tx) error {
		for _, a := range addrs {
			if err := tx.Delete(a); err != nil {
				return err
			}
		}
		return nil
	})
}

package state

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Import makes the state a copy of from, lineage and serial included, in
// one batch (rbee state migrate copies another backend's state this way).
// The caller holds the lock and has checked that the state is empty or may
// be overwritten.
func (s *Store) Import(ctx context.Context, from *Snapshot) error {
	if from.Lineage == "" {
		return errors.New("the state to copy has no lineage: it was never written, so there is nothing to copy")
	}
	cur, err := s.Snapshot(ctx)
	if err != nil {
		return err
	}
	return s.with(ctx, create, func(db *pebble.DB) error {
		tx := &Tx{b: db.NewBatch()}
		defer tx.b.Close()
		for _, a := range cur.Addrs() {
			if err := tx.Delete(a); err != nil {
				return err
			}
		}
		for _, a := range from.Addrs() {
			r, _ := from.Get(a)
			if err := tx.Put(r); err != nil {
				return err
			}
		}
		_ = tx.b.Set(keyLineage, []byte(from.Lineage), nil)
		_ = tx.b.Set(keySerial, []byte(strconv.FormatUint(from.Serial, 10)), nil)
		_ = tx.b.Set(keyUpdated, []byte(time.Now().UTC().Format(time.RFC3339Nano)), nil)
		if err := tx.b.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("writing state in %s: %w", s.dbPath(), err)
		}
		return nil
	})
}

package state

import (
	"context"
	"errors"
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
	return s.Update(ctx, func(tx *Tx) error {
		tx.lineage = from.Lineage
		tx.nextSerial = func(uint64) uint64 { return from.Serial }
		return replaceAll(tx, cur, from)
	})
}

// replaceAll writes to tx what turns the records of cur into those of from.
func replaceAll(tx *Tx, cur, from *Snapshot) error {
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
	return nil
}

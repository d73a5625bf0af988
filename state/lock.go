package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// LockInfo describes who holds the state lock.
type LockInfo struct {
	ID        string    `json:"id"`
	Holder    string    `json:"holder"` // user name
	PID       int       `json:"pid"`
	Host      string    `json:"host"`
	Operation string    `json:"operation"` // apply, destroy, plan, watch, state rm, ...
	Created   time.Time `json:"created"`
}

// String describes the holder for messages.
func (l LockInfo) String() string {
	return fmt.Sprintf("%s (pid %d on %s, operation %q, since %s, lock ID %s)",
		l.Holder, l.PID, l.Host, l.Operation, l.Created.Local().Format(time.RFC3339), l.ID)
}

// Stale reports whether the holder is a process on this host that no longer runs.
func (l LockInfo) Stale() bool {
	host, _ := os.Hostname()
	if l.Host != host || l.PID <= 0 {
		return false
	}
	err := syscall.Kill(l.PID, 0)
	return errors.Is(err, syscall.ESRCH)
}

// LockedError is returned by Lock when another holder keeps the lock past the timeout.
type LockedError struct {
	Holder LockInfo
	Waited time.Duration
}

func (e *LockedError) Error() string {
	hint := "wait for it to finish, or raise -lock-timeout"
	if e.Holder.Stale() {
		hint = fmt.Sprintf("process %d is no longer running, so the lock is stale", e.Holder.PID)
	}
	return fmt.Sprintf("the state is locked by %s; waited %s. %s; if the holder is gone, run: rbee state unlock %s",
		e.Holder, e.Waited.Round(time.Millisecond), hint, e.Holder.ID)
}

// Lock takes the state lock for op, waiting up to timeout while someone else
// holds it, then failing with a *LockedError that names the holder. The
// first write under the lock saves the state as it was to BackupFile.
// Release it with Unlock(ctx, info.ID).
func (s *Store) Lock(ctx context.Context, op string, timeout time.Duration) (*LockInfo, error) {
	me := NewLockInfo(op)
	val, err := json.Marshal(me)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	for {
		var held *LockInfo
		err := s.with(ctx, create, func(db *pebble.DB) error {
			cur, err := readLock(db)
			if err != nil || cur != nil {
				held = cur
				return err
			}
			b := db.NewBatch()
			defer b.Close()
			_ = b.Set(keyLock, val, nil)
			return s.commit(db, b)
		})
		if err != nil {
			return nil, err
		}
		if held == nil {
			s.backupDue.Store(true)
			return &me, nil
		}
		waited := time.Since(start)
		if waited >= timeout {
			return nil, &LockedError{Holder: *held, Waited: waited}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(250*time.Millisecond, timeout-waited)):
		}
	}
}

func readLock(db *pebble.DB) (*LockInfo, error) {
	v, err := get(db, keyLock)
	if err != nil || v == nil {
		return nil, err
	}
	var l LockInfo
	if err := json.Unmarshal(v, &l); err != nil {
		return nil, fmt.Errorf("%w: the lock record is unreadable (%v); clear it with: rbee state unlock unreadable", ErrCorrupt, err)
	}
	return &l, nil
}

// CurrentLock returns the lock holder, or nil when the state is not locked.
func (s *Store) CurrentLock(ctx context.Context) (*LockInfo, error) {
	var out *LockInfo
	err := s.view(ctx, func(db *pebble.DB) error {
		var err error
		out, err = readLock(db)
		return err
	})
	if errors.Is(err, errNoState) {
		return nil, nil
	}
	return out, err
}

// Unlock releases the lock with the given ID (from Lock, or shown in a
// LockedError to clear a stale lock). An ID that does not match the current
// lock is refused, so one operation never releases another's lock.
func (s *Store) Unlock(ctx context.Context, id string) error {
	err := s.with(ctx, readWrite, func(db *pebble.DB) error {
		v, err := get(db, keyLock)
		if err != nil {
			return err
		}
		if v == nil {
			return fmt.Errorf("the state in %s is not locked", s.dir)
		}
		var cur LockInfo
		if json.Unmarshal(v, &cur) == nil && cur.ID != id {
			return fmt.Errorf("lock ID %q does not match the current lock, held by %s", id, cur)
		}
		b := db.NewBatch()
		defer b.Close()
		_ = b.Delete(keyLock, nil)
		return s.commit(db, b)
	})
	if errors.Is(err, errNoState) {
		return fmt.Errorf("there is no state in %s, so nothing is locked", s.dir)
	}
	return err
}

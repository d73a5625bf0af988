package operation

import (
	"context"
	"time"

	"github.com/rbee-dev/rbee/state"
)

// State is the state backend an operation runs against: a snapshot to plan
// from, the lock that serialises writers, and the writes apply and refresh
// make. state.Store (Pebble, in a folder beside the configuration) is the
// default implementation; another backend implements the same methods.
type State interface {
	// Dir is the local folder of the state: hive tokens are kept there.
	Dir() string
	// Snapshot reads every record at one point in time.
	Snapshot(ctx context.Context) (*state.Snapshot, error)
	// Lock takes the lock for op, waiting up to timeout for another holder
	// (a *state.LockedError names it); Unlock releases it by id.
	Lock(ctx context.Context, op string, timeout time.Duration) (*state.LockInfo, error)
	Unlock(ctx context.Context, id string) error
	// CurrentLock is the lock's holder, or nil when it is free.
	CurrentLock(ctx context.Context) (*state.LockInfo, error)
	// Put and Delete write one batch each: one serial increment, and the
	// first write under a lock saves a backup of the state as it was.
	Put(ctx context.Context, records ...state.Record) error
	Delete(ctx context.Context, addrs ...state.Addr) error
	// Restore replaces every record with those of a backup.
	Restore(ctx context.Context, from *state.Snapshot, force bool) error
	// History is the last limit writes (all kept when limit <= 0), newest first.
	History(ctx context.Context, limit int) ([]state.HistoryEntry, error)
}

var _ State = (*state.Store)(nil)

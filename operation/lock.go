package operation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rbee-dev/rbee/state"
)

// LockPolicy says how an operation takes the state lock.
type LockPolicy struct {
	// Skip runs without the lock (-lock=false); only for operations that
	// write nothing.
	Skip bool
	// Timeout is how long to wait while someone else holds the lock
	// (-lock-timeout); a negative Timeout waits until the context ends.
	Timeout time.Duration
	// TakeOverStale releases a lock whose holder died on this host. A daemon
	// has nobody to run rbee state unlock for it, and since every write is
	// one atomic batch, a dead holder leaves a whole state behind.
	TakeOverStale bool
	// OnWait is told who holds the lock whenever that changes while the
	// operation waits for it (nil: nobody is told).
	OnWait func(holder state.LockInfo)
}

// waitPoll is how long one attempt to take the lock waits when the
// operation must look at the holder again (OnWait, TakeOverStale).
const waitPoll = 5 * time.Second

// Locked runs fn with the state lock for op held (unless the policy skips
// it) and a snapshot read under it, then releases the lock, also when fn
// fails or the context is cancelled. A context cancelled before fn returns
// anything else gives an *Interrupted error.
func (b *Backend) Locked(ctx context.Context, op string, pol LockPolicy, fn func(ctx context.Context, snap *state.Snapshot) error) error {
	var info *state.LockInfo
	if !pol.Skip {
		var err error
		if info, err = b.lock(ctx, op, pol); err != nil {
			if ctx.Err() != nil {
				return &Interrupted{Op: op}
			}
			return err
		}
	}
	err := b.withSnapshot(ctx, fn)
	if errors.Is(err, errStopped) || (ctx.Err() != nil && errors.Is(err, ctx.Err())) {
		err = &Interrupted{Op: op, LockReleased: info != nil}
	}
	if info != nil {
		if uerr := b.unlock(info); uerr != nil {
			return errors.Join(err, uerr)
		}
	}
	return err
}

// errStopped is what a step returns when it saw the context end; Locked
// turns it into *Interrupted.
var errStopped = errors.New("stopped")

func (b *Backend) withSnapshot(ctx context.Context, fn func(ctx context.Context, snap *state.Snapshot) error) error {
	snap, err := b.State.Snapshot(ctx)
	if err != nil {
		return err
	}
	return fn(ctx, snap)
}

// lock takes the lock for op as pol says.
func (b *Backend) lock(ctx context.Context, op string, pol LockPolicy) (*state.LockInfo, error) {
	if pol.OnWait == nil && !pol.TakeOverStale {
		if pol.Timeout < 0 {
			pol.Timeout = 1<<63 - 1
		}
		return b.State.Lock(ctx, op, pol.Timeout)
	}
	var deadline time.Time
	if pol.Timeout >= 0 {
		deadline = time.Now().Add(pol.Timeout)
	}
	told := ""
	for {
		wait := waitPoll
		if !deadline.IsZero() {
			wait = max(0, min(wait, time.Until(deadline)))
		}
		info, err := b.State.Lock(ctx, op, wait)
		var le *state.LockedError
		switch {
		case err == nil:
			return info, nil
		case !errors.As(err, &le):
			return nil, err
		case pol.TakeOverStale && le.Holder.Stale():
			if err := b.State.Unlock(ctx, le.Holder.ID); err != nil {
				return nil, fmt.Errorf("release the stale state lock: %w", err)
			}
			b.log().Warn("took over the state lock of a process that is gone", "holder", le.Holder.String())
			continue
		case !deadline.IsZero() && !time.Now().Before(deadline):
			return nil, err
		}
		if h := le.Holder.String(); h != told && pol.OnWait != nil {
			told = h
			pol.OnWait(le.Holder)
		}
	}
}

// unlock releases the lock even when the operation's context has ended.
func (b *Backend) unlock(info *state.LockInfo) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.State.Unlock(ctx, info.ID); err != nil {
		return fmt.Errorf("releasing the state lock: %w; release it with: rbee state unlock %s", err, info.ID)
	}
	return nil
}

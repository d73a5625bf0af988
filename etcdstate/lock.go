package etcdstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/rbee-dev/rbee/state"
)

// heldLock is the lock this Store holds: the lease that keeps it and the
// revision the lock key was created at, which every write checks.
type heldLock struct {
	info    state.LockInfo
	session *concurrency.Session
	rev     int64
}

// LockedError is Lock's error while another holder keeps the lock past the
// timeout. It wraps the *state.LockedError, so callers that look for one
// find it; only the advice differs: the lock frees itself.
type LockedError struct {
	*state.LockedError
	TTL time.Duration
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("the state is locked by %s; waited %s. Wait for it to finish, or raise -lock-timeout. The lock is an etcd lease: if the holder died it frees itself within %s; rbee state unlock %s releases it at once",
		e.Holder, e.Waited.Round(time.Millisecond), e.TTL, e.Holder.ID)
}

// Unwrap returns the *state.LockedError.
func (e *LockedError) Unwrap() error { return e.LockedError }

// ErrLockLost marks a write refused because this command's lock expired
// (its lease was not kept alive) or was released by someone else.
var ErrLockLost = errors.New("the state lock was lost")

// Lock takes the lock for op, waiting up to timeout while someone else
// holds it. The lock lives as long as this process keeps its lease alive.
func (s *Store) Lock(ctx context.Context, op string, timeout time.Duration) (*state.LockInfo, error) {
	me := state.NewLockInfo(op)
	val, err := json.Marshal(me)
	if err != nil {
		return nil, err
	}
	if err := s.init(ctx); err != nil {
		return nil, err
	}
	sess, err := s.session(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	for {
		rev, held, err := s.tryLock(ctx, sess, me, val)
		if err != nil {
			_ = sess.Close()
			return nil, err
		}
		if held == nil {
			s.mu.Lock()
			s.held = &heldLock{info: me, session: sess, rev: rev}
			s.mu.Unlock()
			s.backupDue.Store(true)
			return &me, nil
		}
		waited := time.Since(start)
		if waited >= timeout {
			_ = sess.Close()
			return nil, &LockedError{LockedError: &state.LockedError{Holder: *held, Waited: waited}, TTL: s.opts.LeaseTTL}
		}
		select {
		case <-ctx.Done():
			_ = sess.Close()
			return nil, ctx.Err()
		case <-time.After(min(250*time.Millisecond, timeout-waited)):
		}
	}
}

// session grants the lease the lock will be bound to and keeps it alive.
func (s *Store) session(ctx context.Context) (*concurrency.Session, error) {
	rctx, cancel := s.request(ctx)
	defer cancel()
	ttl := max(1, int(s.opts.LeaseTTL/time.Second))
	sess, err := concurrency.NewSession(s.cli, concurrency.WithTTL(ttl), concurrency.WithContext(context.WithoutCancel(rctx)))
	if err != nil {
		return nil, s.wrap(ctx, "taking the state lock", err)
	}
	return sess, nil
}

// tryLock creates the lock key bound to the session's lease if it is free;
// else it returns the holder.
func (s *Store) tryLock(ctx context.Context, sess *concurrency.Session, me state.LockInfo, val []byte) (int64, *state.LockInfo, error) {
	k := s.key(keyLock)
	var resp *clientv3.TxnResponse
	err := s.retry(ctx, func(rctx context.Context) error {
		var err error
		resp, err = s.cli.Txn(rctx).If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
			Then(clientv3.OpPut(k, string(val), clientv3.WithLease(sess.Lease()))).
			Else(clientv3.OpGet(k)).Commit()
		return err
	})
	if err != nil {
		return 0, nil, s.wrap(ctx, "taking the state lock", err)
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 { // released between the compare and the get: try again
		return 0, &state.LockInfo{}, nil
	}
	held, err := decodeLock(kvs[0].Value)
	if err == nil && held.ID == me.ID && kvs[0].Lease == int64(sess.Lease()) {
		// An attempt whose answer was lost took it.
		return kvs[0].CreateRevision, nil, nil
	}
	return 0, held, err
}

func decodeLock(v []byte) (*state.LockInfo, error) {
	var l state.LockInfo
	if err := json.Unmarshal(v, &l); err != nil {
		return nil, fmt.Errorf("%w: the lock record is unreadable (%v); clear it with: rbee state unlock unreadable", state.ErrCorrupt, err)
	}
	return &l, nil
}

// CurrentLock returns the lock holder, or nil when the state is not locked.
func (s *Store) CurrentLock(ctx context.Context) (*state.LockInfo, error) {
	rctx, cancel := s.request(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.key(keyLock))
	if err != nil {
		return nil, s.wrap(ctx, "reading the state lock", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return decodeLock(resp.Kvs[0].Value)
}

// Unlock releases the lock with the given ID: this Store's own (revoking
// its lease), or another holder's (from a LockedError). An ID that does not
// match the current lock is refused; "unreadable" clears an unreadable lock.
func (s *Store) Unlock(ctx context.Context, id string) error {
	k := s.key(keyLock)
	rctx, cancel := s.request(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, k)
	if err != nil {
		return s.wrap(ctx, "releasing the state lock", err)
	}
	if len(resp.Kvs) == 0 {
		s.dropHeld(id)
		return fmt.Errorf("the state in %s is not locked", s.Where())
	}
	kv := resp.Kvs[0]
	cur, derr := decodeLock(kv.Value)
	if derr == nil && cur.ID != id {
		return fmt.Errorf("lock ID %q does not match the current lock, held by %s", id, cur)
	}
	if derr != nil && id != "unreadable" {
		return derr
	}
	del, err := s.cli.Txn(rctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", kv.ModRevision)).Then(clientv3.OpDelete(k)).Commit()
	if err != nil {
		return s.wrap(ctx, "releasing the state lock", err)
	}
	s.dropHeld(id)
	if !del.Succeeded {
		return errors.New("the state lock changed hands while it was being released; see rbee state list")
	}
	return nil
}

// dropHeld forgets (and revokes) this Store's lock if its ID is id.
func (s *Store) dropHeld(id string) {
	s.mu.Lock()
	h := s.held
	if h != nil && h.info.ID == id {
		s.held = nil
	}
	s.mu.Unlock()
	if h != nil && h.info.ID == id {
		_ = h.session.Close()
	}
}

// lockGuard is the compare every write carries: the lock this Store holds
// is still the current one, or, holding none, nobody holds it.
func (s *Store) lockGuard() (clientv3.Cmp, *heldLock, error) {
	s.mu.Lock()
	h := s.held
	s.mu.Unlock()
	k := s.key(keyLock)
	if h == nil {
		return clientv3.Compare(clientv3.CreateRevision(k), "=", 0), nil, nil
	}
	select {
	case <-h.session.Done():
		return clientv3.Cmp{}, h, s.lostError(h)
	default:
	}
	return clientv3.Compare(clientv3.CreateRevision(k), "=", h.rev), h, nil
}

func (s *Store) lostError(h *heldLock) error {
	return fmt.Errorf("%w: its etcd lease (%s) was not kept alive, so another command may hold it now; nothing more is written and no further step runs. Run rbee plan to see where the fleet stands",
		ErrLockLost, s.opts.LeaseTTL)
}

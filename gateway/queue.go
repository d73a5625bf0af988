package gateway

import (
	"context"
	"errors"
	"time"
)

// queue is the FIFO of requests for one name (pool or model) waiting for a
// slot.
type queue struct {
	waiters []*waiter
}

// waiter is one queued request; the dispatcher hands it a worker (with the
// slot already counted) through ch.
type waiter struct {
	seq    uint64
	target target
	prefix []uint64
	ch     chan *worker
}

// Queue errors.
var (
	errQueueFull    = errors.New("queue full")
	errQueueTimeout = errors.New("queue timeout")
)

// acquire takes a slot on a worker of t for a request, waiting in t's queue
// (at most limit waiting, for at most timeout) when every slot is taken. The
// caller must release the worker. It returns how long the request waited.
func (f *fleet) acquire(ctx context.Context, t target, prefix []uint64, limit int, timeout time.Duration) (*worker, time.Duration, error) {
	f.mu.Lock()
	q := f.queues[t.name]
	if q == nil || len(q.waiters) == 0 {
		if w := f.pickLocked(t, prefix); w != nil {
			f.mu.Unlock()
			return w, 0, nil
		}
	}
	if q == nil {
		q = &queue{}
		f.queues[t.name] = q
	}
	if len(q.waiters) >= limit {
		f.mu.Unlock()
		return nil, 0, errQueueFull
	}
	f.seq++
	wt := &waiter{seq: f.seq, target: t, prefix: prefix, ch: make(chan *worker, 1)}
	q.waiters = append(q.waiters, wt)
	f.mu.Unlock()

	start := time.Now()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var err error
	select {
	case w := <-wt.ch:
		return w, time.Since(start), nil
	case <-timer.C:
		err = errQueueTimeout
	case <-ctx.Done():
		err = context.Cause(ctx)
	}
	f.mu.Lock()
	left := q.remove(wt)
	f.mu.Unlock()
	if !left { // handed a worker just now: give its slot back
		f.release(<-wt.ch)
	}
	return nil, time.Since(start), err
}

// remove takes wt out of the queue; false when it was no longer there.
func (q *queue) remove(wt *waiter) bool {
	for i, x := range q.waiters {
		if x == wt {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			return true
		}
	}
	return false
}

// release gives back the slot a request held on w and lets the queues use it.
func (f *fleet) release(w *worker) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.inflight--
	f.dispatchLocked()
}

// dispatchLocked hands free slots to queued requests, oldest first across
// all queues; a queue whose oldest request cannot be served blocks only
// itself.
func (f *fleet) dispatchLocked() {
	for {
		var best *queue
		for _, q := range f.queues {
			if len(q.waiters) > 0 && (best == nil || q.waiters[0].seq < best.waiters[0].seq) && f.canServeLocked(q.waiters[0].target) {
				best = q
			}
		}
		if best == nil {
			return
		}
		wt := best.waiters[0]
		w := f.pickLocked(wt.target, wt.prefix)
		if w == nil {
			return
		}
		best.waiters = best.waiters[1:]
		wt.ch <- w
	}
}

// canServeLocked reports whether some worker of t has a free slot.
func (f *fleet) canServeLocked(t target) bool {
	for _, w := range f.membersLocked(t) {
		if w.routable() && w.free() > 0 {
			return true
		}
	}
	return false
}

// depthLocked is how many requests wait for name.
func (f *fleet) depthLocked(name string) int {
	if q := f.queues[name]; q != nil {
		return len(q.waiters)
	}
	return 0
}

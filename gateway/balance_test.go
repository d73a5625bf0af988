package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// testFleet is a fleet of ready workers of pool "chat" (model "tiny"), each
// with the given number of slots, as if polled.
func testFleet(slots ...int) *fleet {
	f := newFleet(1 << 10)
	for i, n := range slots {
		k := fmt.Sprintf("worker.chat[local/%d]", i)
		f.workers[k] = &worker{key: k, pool: "chat", model: "tiny", node: "local", url: "http://x", polled: true, ready: true, state: "idle", total: n}
	}
	return f
}

var chat = target{name: "chat", kind: "pool"}

func TestPickMostFreeSlots(t *testing.T) {
	cases := []struct {
		name     string
		slots    []int
		inflight []int
		others   []int
		want     string // "" = none
	}{
		{"idle fleet", []int{2, 4}, []int{0, 0}, []int{0, 0}, "worker.chat[local/1]"},
		{"gateway load counts", []int{4, 4}, []int{3, 1}, []int{0, 0}, "worker.chat[local/1]"},
		{"other clients count", []int{4, 4}, []int{0, 0}, []int{1, 3}, "worker.chat[local/0]"},
		{"all taken", []int{1, 2}, []int{1, 1}, []int{0, 1}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := testFleet(c.slots...)
			for i := range c.slots {
				w := f.workers[fmt.Sprintf("worker.chat[local/%d]", i)]
				w.inflight, w.othersBusy = c.inflight[i], c.others[i]
			}
			f.mu.Lock()
			w := f.pickLocked(chat, nil)
			f.mu.Unlock()
			got := ""
			if w != nil {
				got = w.key
			}
			if got != c.want {
				t.Fatalf("picked %q, want %q", got, c.want)
			}
		})
	}
}

func TestPickSkipsWorkersNotReady(t *testing.T) {
	cases := []struct {
		name  string
		spoil func(w *worker)
	}{
		{"down", func(w *worker) { w.ready, w.state = false, stateDown }},
		{"draining", func(w *worker) { w.ready, w.state = false, stateDraining }},
		{"refused since the last poll", func(w *worker) { w.refused = true }},
		{"loading", func(w *worker) { w.ready, w.state = false, "loading" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := testFleet(8, 1)
			c.spoil(f.workers["worker.chat[local/0]"])
			for range 3 {
				f.mu.Lock()
				w := f.pickLocked(chat, nil)
				f.mu.Unlock()
				if w != nil && w.key == "worker.chat[local/0]" {
					t.Fatalf("picked a worker that is %s", c.name)
				}
			}
		})
	}
}

// Many requests at once never take more slots than there are.
func TestAcquireNeverOverbooks(t *testing.T) {
	f := testFleet(2, 3)
	var wg sync.WaitGroup
	got := make(chan *worker, 100)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, _, err := f.acquire(ctx, chat, nil, 100, time.Minute)
			if err == nil {
				got <- w
			}
		}()
	}
	// Five slots: five requests get one, the others queue.
	held := map[string]int{}
	for range 5 {
		w := <-got
		held[w.key]++
	}
	waitDepth(t, f, 15)
	if held["worker.chat[local/0]"] != 2 || held["worker.chat[local/1]"] != 3 || len(got) != 0 {
		t.Fatalf("held %v and %d more, want 2 and 3", held, len(got))
	}
	cancel()
	wg.Wait()
}

func TestQueueIsFIFO(t *testing.T) {
	f := testFleet(1)
	first, _, err := f.acquire(context.Background(), chat, nil, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	order := make(chan int, 5)
	for i := range 5 {
		go func() {
			w, _, err := f.acquire(context.Background(), chat, nil, 10, time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			order <- i
			f.release(w)
		}()
		// Queue them in a known order: wait until request i waits.
		waitDepth(t, f, i+1)
	}
	f.release(first)
	for i := range 5 {
		if got := <-order; got != i {
			t.Fatalf("request %d got the slot in turn %d", got, i)
		}
	}
}

func waitDepth(t *testing.T, f *fleet, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		d := f.depthLocked("chat")
		f.mu.Unlock()
		if d == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue depth %d, want %d", d, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestQueueFullTimeoutAndCancel(t *testing.T) {
	f := testFleet(1)
	held, _, err := f.acquire(context.Background(), chat, nil, 1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// One waits; the next finds the queue full.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, _, err := f.acquire(ctx, chat, nil, 1, time.Minute); done <- err }()
	waitDepth(t, f, 1)
	if _, _, err := f.acquire(context.Background(), chat, nil, 1, time.Minute); !errors.Is(err, errQueueFull) {
		t.Fatalf("a request beyond the queue got %v, want queue full", err)
	}
	// A client that leaves takes its place in the queue with it.
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled waiter got %v", err)
	}
	waitDepth(t, f, 0)
	// A wait longer than the timeout ends in a queue timeout.
	if _, waited, err := f.acquire(context.Background(), chat, nil, 1, 20*time.Millisecond); !errors.Is(err, errQueueTimeout) || waited < 20*time.Millisecond {
		t.Fatalf("got %v after %s, want a queue timeout after 20ms", err, waited)
	}
	f.release(held)
	f.mu.Lock()
	defer f.mu.Unlock()
	if w := f.workers["worker.chat[local/0]"]; w.inflight != 0 {
		t.Fatalf("%d requests still counted on the worker", w.inflight)
	}
}

// A slot that frees while a waiter gives up is not lost.
func TestGiveUpRaceKeepsSlots(t *testing.T) {
	f := testFleet(1)
	for range 200 {
		held, _, err := f.acquire(context.Background(), chat, nil, 1, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			if w, _, err := f.acquire(ctx, chat, nil, 1, time.Minute); err == nil {
				f.release(w)
			}
			close(done)
		}()
		waitDepth(t, f, 1)
		go cancel()
		f.release(held)
		<-done
		f.mu.Lock()
		n := f.workers["worker.chat[local/0]"].inflight
		f.mu.Unlock()
		if n != 0 {
			t.Fatalf("%d slots counted after everything was released", n)
		}
	}
}

func TestPrefixHashes(t *testing.T) {
	turn1 := strings.Repeat("system prompt. ", 10) + "user: hello"
	turn2 := turn1 + " assistant: hi there. user: and then?"
	h1, h2 := prefixHashes(turn1), prefixHashes(turn2)
	if len(h1) != len(turn1)/BlockBytes || len(h2) <= len(h1) {
		t.Fatalf("%d and %d blocks for %d and %d bytes", len(h1), len(h2), len(turn1), len(turn2))
	}
	for i := range h1 {
		if h1[i] != h2[i] {
			t.Fatalf("block %d of a shared prefix hashes differently", i)
		}
	}
	other := prefixHashes("x" + turn1[1:])
	if other[0] == h1[0] {
		t.Fatal("different leading blocks hash alike")
	}
	if n := len(prefixHashes(strings.Repeat("a", 10*maxBlocks*BlockBytes))); n != maxBlocks {
		t.Fatalf("%d blocks of a huge prompt, want at most %d", n, maxBlocks)
	}
}

func TestAffinityFollowsThePrefixWithinItsShare(t *testing.T) {
	f := testFleet(8, 8)
	conv := prefixHashes(strings.Repeat("a conversation that goes on. ", 20))
	f.mu.Lock()
	defer f.mu.Unlock()
	first := f.pickLocked(chat, conv)
	first.inflight-- // the first turn finished
	// The next turns go where the first went, even when the other worker is freer.
	for range 3 {
		w := f.pickLocked(chat, conv)
		if w != first {
			t.Fatalf("a later turn went to %s, not to %s which served the first", w.key, first.key)
		}
		w.inflight--
	}
	other := f.workers["worker.chat[local/0]"]
	if other == first {
		other = f.workers["worker.chat[local/1]"]
	}
	// Within its share plus one, the prefix's worker keeps it: the 3rd of 3
	// requests in flight (bound ⌈1.25 × 3 ÷ 2⌉ + 1 = 3).
	first.inflight = 2
	if w := f.pickLocked(chat, conv); w != first {
		t.Fatalf("a worker with 2 of 2 requests in flight did not take the 3rd for its prefix")
	}
	// Past it, the prefix's worker is passed over: the 6th of 6 (bound
	// ⌈1.25 × 6 ÷ 2⌉ + 1 = 5).
	first.inflight = 5
	if w := f.pickLocked(chat, conv); w != other {
		t.Fatalf("a worker with 5 of 5 requests in flight took the 6th for its prefix")
	}
}

func TestAffinityForgetsOldest(t *testing.T) {
	a := newAffinity(2)
	a.remember([]uint64{1, 2}, "w1")
	a.remember([]uint64{3}, "w2")
	if a.lookup([]uint64{1}) != "" || a.lookup([]uint64{2}) != "w1" || a.lookup([]uint64{2, 3}) != "w2" {
		t.Fatalf("lookup after eviction: %q %q %q", a.lookup([]uint64{1}), a.lookup([]uint64{2}), a.lookup([]uint64{2, 3}))
	}
	none := newAffinity(0)
	none.remember([]uint64{1}, "w1")
	if none.lookup([]uint64{1}) != "" {
		t.Fatal("affinity off still remembered a prefix")
	}
}

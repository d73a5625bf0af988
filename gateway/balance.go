package gateway

import (
	"container/list"
	"hash/fnv"
	"math"
)

// Prefix affinity. A multi-turn chat sends the whole conversation again at
// every turn; the worker that answered the previous turn may still hold its
// prompt in a slot's KV cache. The gateway keeps, for recent requests, a hash
// of every leading block of their prompt and the worker it chose. A request
// whose longest known leading block points at a worker goes there, unless
// that worker already carries more than its share of the load (bounded load,
// as in consistent hashing with bounded loads): then it goes to the worker
// with the most free slots like any other request.

// BlockBytes is the granularity of prefix matching: a prompt's leading part
// is hashed at every multiple of it.
const BlockBytes = 64

// maxBlocks bounds how much of a prompt is hashed (64 × 512 = 32 KiB).
const maxBlocks = 512

// loadFactor is the bounded-load constant: a worker takes an affine request
// only while its load stays within loadFactor × the average load, plus one
// request of slack. The slack matters at low load: with 3 requests on 2
// workers the plain bound, ⌈1.25 × 1.5⌉ = 2, sends a conversation's next
// turn away from the worker that holds it in its KV cache whenever that
// worker has 2 others, and a full prefill elsewhere costs far more than
// one more sequence in a batch (decoding a batch is bound by reading the
// weights, which every sequence shares).
const loadFactor = 1.25

// prefixHashes returns the hash of each full leading block of text.
func prefixHashes(text string) []uint64 {
	n := min(len(text)/BlockBytes, maxBlocks)
	out := make([]uint64, n)
	h := fnv.New64a()
	for i := range n {
		_, _ = h.Write([]byte(text[i*BlockBytes : (i+1)*BlockBytes]))
		out[i] = h.Sum64()
	}
	return out
}

// affinity maps prefix hashes to the worker that served them, least recently
// used entries forgotten first.
type affinity struct {
	max     int
	entries map[uint64]*list.Element
	lru     *list.List // of *affine, most recent first
}

type affine struct {
	hash   uint64
	worker string
}

func newAffinity(max int) *affinity {
	return &affinity{max: max, entries: map[uint64]*list.Element{}, lru: list.New()}
}

// lookup returns the worker of the longest known prefix, or "".
func (a *affinity) lookup(prefix []uint64) string {
	for i := len(prefix) - 1; i >= 0; i-- {
		if e, ok := a.entries[prefix[i]]; ok {
			return e.Value.(*affine).worker
		}
	}
	return ""
}

// remember records that worker served every prefix.
func (a *affinity) remember(prefix []uint64, worker string) {
	if a.max <= 0 {
		return
	}
	for _, h := range prefix {
		if e, ok := a.entries[h]; ok {
			e.Value.(*affine).worker = worker
			a.lru.MoveToFront(e)
			continue
		}
		a.entries[h] = a.lru.PushFront(&affine{hash: h, worker: worker})
		for a.lru.Len() > a.max {
			old := a.lru.Back()
			a.lru.Remove(old)
			delete(a.entries, old.Value.(*affine).hash)
		}
	}
}

// pickLocked chooses a worker of t for a request and counts the request on
// it, or returns nil when none has a free slot: the prefix's worker when it
// is within its share of the load, else the ready worker with the most free
// slots (ties rotate).
func (f *fleet) pickLocked(t target, prefix []uint64) *worker {
	ws := f.membersLocked(t)
	var ok []*worker
	totalLoad := 0
	for _, w := range ws {
		if w.routable() {
			ok = append(ok, w)
			totalLoad += w.load()
		}
	}
	if len(ok) == 0 {
		return nil
	}
	var chosen *worker
	if key := f.affinity.lookup(prefix); key != "" {
		bound := int(math.Ceil(loadFactor*float64(totalLoad+1)/float64(len(ok)))) + 1
		for _, w := range ok {
			if w.key == key && w.free() > 0 && w.load()+1 <= bound {
				chosen = w
			}
		}
	}
	if chosen == nil {
		f.rr++
		for i := range ok {
			w := ok[(i+f.rr)%len(ok)]
			if w.free() > 0 && (chosen == nil || w.free() > chosen.free()) {
				chosen = w
			}
		}
	}
	if chosen == nil {
		return nil
	}
	chosen.inflight++
	f.affinity.remember(prefix, chosen.key)
	return chosen
}

package engine

// The prompt cache: a slot keeps the tokens and KV cells of its last request
// when it ends. A new request takes the free slot whose cached tokens share
// the longest prefix with its prompt (see pickSlot), drops the cells past
// that prefix and feeds only the rest of the prompt.

// commonPrefix is how many leading tokens a and b share.
func commonPrefix(a, b []int) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// pickSlot chooses a free slot for prompt; e.mu is held and a slot is free.
// It returns the index in e.free and how many prompt tokens the slot's KV
// cells already hold. The slot sharing the longest prefix wins when that
// prefix is at least half of the prompt (a chat's next turn); otherwise
// (a new conversation, or one sharing only a preamble) the request takes an
// empty slot, else the least recently used free one, so that it does not
// throw away the cache of a conversation that is only between turns, and it
// still reuses whatever prefix that slot shares. Ties go to the lowest slot.
// At least the last prompt token is always decoded again, so that there are
// logits to sample from.
func (e *Engine) pickSlot(prompt []int, useCache bool) (index, reuse int) {
	shared := func(id int) int {
		if !useCache {
			return 0
		}
		return commonPrefix(e.cached[id], prompt)
	}
	index, reuse = -1, 0
	for j, id := range e.free {
		if n := shared(id); index < 0 || n > reuse || (n == reuse && id < e.free[index]) {
			index, reuse = j, n
		}
	}
	if 2*reuse < len(prompt) {
		index = 0
		for j, id := range e.free {
			if old := e.free[index]; e.age(id) < e.age(old) || (e.age(id) == e.age(old) && id < old) {
				index = j
			}
		}
		reuse = shared(e.free[index])
	}
	return index, min(reuse, len(prompt)-1)
}

// age orders slots for eviction: an empty slot first, then by when its last
// request ended, oldest first. e.mu is held.
func (e *Engine) age(id int) uint64 {
	if len(e.cached[id]) == 0 {
		return 0
	}
	return e.used[id]
}

// reuseCache drops the KV cells of s's slot past the prefix it reuses (all of
// them when it reuses none, or when llama.cpp cannot cut the sequence), and
// sets where feeding the prompt starts. Only the scheduler calls it.
func (e *Engine) reuseCache(s *Stream) {
	if s.reuse == 0 || !e.lc.KvCacheSeqRm(s.slot, s.reuse, -1) {
		e.lc.KvCacheSeqRm(s.slot, -1, -1)
		s.reuse = 0
	}
	s.fed, s.pos = s.reuse, s.reuse
	s.stats.CachedTokens = s.reuse
	s.kv = make([]int, s.reuse, len(s.req.Prompt)+s.req.MaxTokens)
	copy(s.kv, s.req.Prompt[:s.reuse])
}

// keepCache records what s's slot holds when s ends: the tokens it decoded,
// or nothing (cells cleared) after an error or when the request asked not to
// be cached. Only the scheduler calls it.
func (e *Engine) keepCache(s *Stream, err error) []int {
	if err != nil || s.req.NoPromptCache {
		e.lc.KvCacheSeqRm(s.slot, -1, -1)
		return nil
	}
	return s.kv
}

// forgetCaches clears the KV cells and cached tokens of every slot. Every
// slot must be free and held by the caller (DecodeLoop).
func (e *Engine) forgetCaches() {
	for i := range e.opts.Slots {
		e.lc.KvCacheSeqRm(i, -1, -1)
	}
	e.mu.Lock()
	clear(e.cached)
	e.mu.Unlock()
}

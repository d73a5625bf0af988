package engine

// The prompt cache: a slot keeps the tokens and KV cells of its last request
// when it ends. A new request takes the free slot whose cached tokens share
// the longest prefix with its prompt, drops the cells past that prefix and
// feeds only the rest of the prompt.

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
// cells already hold. The longest shared prefix wins, ties going to the
// lowest slot; when no slot shares more than the first token (the BOS every
// prompt starts with), an empty slot is taken before one whose cache would
// be thrown away. At least the last prompt token is always decoded again, so
// that there are logits to sample from.
func (e *Engine) pickSlot(prompt []int, useCache bool) (index, reuse int) {
	index, reuse = -1, 0
	for j, id := range e.free {
		n := 0
		if useCache {
			n = commonPrefix(e.cached[id], prompt)
		}
		if index < 0 || n > reuse || (n == reuse && id < e.free[index]) {
			index, reuse = j, n
		}
	}
	if reuse <= 1 {
		empty := -1
		for j, id := range e.free {
			if len(e.cached[id]) == 0 && (empty < 0 || id < e.free[empty]) {
				empty = j
			}
		}
		if empty >= 0 && empty != index {
			index, reuse = empty, 0
		}
	}
	return index, min(reuse, len(prompt)-1)
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

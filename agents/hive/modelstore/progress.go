package modelstore

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
)

func contentRangeStart(v string) (int64, bool) {
	// "bytes 100-199/200"
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, false
	}
	start, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(start, 10, 64)
	return n, err == nil
}

// progress throttles progress callbacks to a few per second and computes the
// rate over the last interval.
type progress struct {
	fn        func(hiveapi.Progress)
	total     int64
	mu        sync.Mutex
	lastT     time.Time
	lastBytes int64
	rate      float64
}

const progressEvery = 200 * time.Millisecond

func newProgress(fn func(hiveapi.Progress), start, total int64) *progress {
	p := &progress{fn: fn, total: total, lastT: time.Now(), lastBytes: start}
	if fn != nil {
		fn(hiveapi.Progress{Bytes: start, Total: max(total, 0)})
	}
	return p
}

func (p *progress) update(bytes int64, final bool) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	now := time.Now()
	dt := now.Sub(p.lastT)
	if !final && dt < progressEvery {
		p.mu.Unlock()
		return
	}
	if dt > 0 {
		inst := float64(bytes-p.lastBytes) / dt.Seconds()
		if p.rate == 0 {
			p.rate = inst
		} else {
			p.rate = 0.5*p.rate + 0.5*inst
		}
	}
	p.lastT, p.lastBytes = now, bytes
	ev := hiveapi.Progress{Bytes: bytes, Total: max(p.total, 0), Rate: p.rate}
	p.mu.Unlock()
	p.fn(ev)
}

// Package backoff computes retry delays: exponential, capped, with jitter.
// The hive uses it for download retries (100 ms doubling) and for restarting
// crashed workers.
package backoff

import (
	"math"
	"math/rand/v2"
	"time"
)

// Policy describes one exponential backoff: the n-th retry (n ≥ 1) waits
// Base·2^(n-1), capped at Max, then scaled by a random factor in
// [1-Jitter, 1+Jitter].
type Policy struct {
	Base   time.Duration
	Max    time.Duration // 0: no cap
	Jitter float64       // 0..1; 0.5 means ±50 %
	// Rand returns a float in [0,1); nil uses math/rand/v2. Tests set it.
	Rand func() float64
}

// Delay returns how long to wait before retry n (n ≥ 1; n ≤ 0 returns 0).
func (p Policy) Delay(n int) time.Duration {
	if n <= 0 || p.Base <= 0 {
		return 0
	}
	d := p.Base
	for i := 1; i < n; i++ {
		if p.Max > 0 && d >= p.Max {
			break
		}
		if d > math.MaxInt64/2 {
			break
		}
		d *= 2
	}
	if p.Max > 0 && d > p.Max {
		d = p.Max
	}
	if p.Jitter > 0 {
		r := p.Rand
		if r == nil {
			r = rand.Float64
		}
		f := 1 - p.Jitter + 2*p.Jitter*r()
		d = time.Duration(float64(d) * f)
	}
	return d
}

package backoff

import (
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	fixed := func(v float64) func() float64 { return func() float64 { return v } }
	ms := time.Millisecond
	tests := []struct {
		name string
		p    Policy
		n    int
		want time.Duration
	}{
		{"first retry is the base", Policy{Base: 100 * ms}, 1, 100 * ms},
		{"doubles", Policy{Base: 100 * ms}, 2, 200 * ms},
		{"doubles again", Policy{Base: 100 * ms}, 5, 1600 * ms},
		{"zero attempt", Policy{Base: 100 * ms}, 0, 0},
		{"negative attempt", Policy{Base: 100 * ms}, -3, 0},
		{"capped", Policy{Base: time.Second, Max: 30 * time.Second}, 10, 30 * time.Second},
		{"cap not reached", Policy{Base: time.Second, Max: 30 * time.Second}, 3, 4 * time.Second},
		{"huge n does not overflow", Policy{Base: time.Second}, 500, time.Second << 33},
		{"jitter low end", Policy{Base: 100 * ms, Jitter: 0.5, Rand: fixed(0)}, 1, 50 * ms},
		{"jitter middle", Policy{Base: 100 * ms, Jitter: 0.5, Rand: fixed(0.5)}, 2, 200 * ms},
		{"jitter high end", Policy{Base: 100 * ms, Jitter: 0.5, Rand: fixed(1)}, 3, 600 * ms},
		{"jitter after cap", Policy{Base: time.Second, Max: 2 * time.Second, Jitter: 0.25, Rand: fixed(0)}, 9, 1500 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Delay(tt.n); got != tt.want {
				t.Errorf("Delay(%d) = %v, want %v", tt.n, got, tt.want)
			}
		})
	}
}

func TestDelayJitterStaysInBounds(t *testing.T) {
	p := Policy{Base: 100 * time.Millisecond, Jitter: 0.5}
	for i := 0; i < 1000; i++ {
		d := p.Delay(3)
		if d < 200*time.Millisecond || d > 600*time.Millisecond {
			t.Fatalf("Delay(3) = %v, outside [200ms, 600ms]", d)
		}
	}
}

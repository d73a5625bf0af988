package worker

import (
	"syscall"
	"testing"
)

// TestLowerThreadPriority checks, through the kernel, that the hashing
// thread runs at nice 19 and that no other thread is lowered with it.
func TestLowerThreadPriority(t *testing.T) {
	// getpriority(2) returns 20 - nice.
	niceOf := func(tid int) int {
		p, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
		if err != nil {
			t.Fatal(err)
		}
		return 20 - p
	}
	type result struct{ tid, nice int }
	got := make(chan result)
	go func() {
		if err := lowerThreadPriority(); err != nil {
			t.Error(err)
		}
		tid := syscall.Gettid()
		got <- result{tid, niceOf(tid)}
	}()
	r := <-got
	if r.nice != backgroundNice {
		t.Errorf("the hashing thread runs at nice %d, want %d", r.nice, backgroundNice)
	}
	if me := syscall.Gettid(); me != r.tid && niceOf(me) == backgroundNice {
		t.Errorf("the test's own thread was lowered too")
	}
}

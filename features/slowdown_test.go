package features

// A process slowed for real by SIGSTOP/SIGCONT cycles, made deterministic
// on a loaded machine: the process (every thread) is pinned to one CPU and
// the goroutine that stops and continues it to another. Without that, a
// busy process preempts whoever is about to stop it, and one "short" run
// window stretches over its whole burst of work.

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The cycle: the process runs slowRunning, then stops for slowStopped. A
// run window lasts 0.3 to 1 ms (a few up to 6 ms) on a loaded machine, so a
// burst of work of a few ms (16 tokens of a small model) spans several
// stops and takes tens of times as long, and a canary (about 10 ms of work)
// still ends within 1.5 to 3 s, far from its 30 s timeout.
const (
	slowStopped = 100 * time.Millisecond
	slowRunning = 300 * time.Microsecond
)

// slowDown starts the cycles on pid; stop ends them, leaves the process
// continued and gives its threads back the CPUs they had.
func slowDown(pid int) (stop func(), err error) {
	var mine unix.CPUSet
	if err := unix.SchedGetaffinity(0, &mine); err != nil {
		return nil, fmt.Errorf("reading this process's CPUs: %w", err)
	}
	cpus := cpuList(mine)
	if len(cpus) < 2 {
		return nil, fmt.Errorf("slowing a process deterministically needs two CPUs, this test has %d", len(cpus))
	}
	saved, err := pinThreads(pid, cpus[0])
	if err != nil {
		return nil, err
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		// The locked thread ends with the goroutine: its pinning goes too.
		runtime.LockOSThread()
		var set unix.CPUSet
		set.Set(cpus[len(cpus)-1])
		_ = unix.SchedSetaffinity(0, &set)
		for {
			_ = syscall.Kill(pid, syscall.SIGSTOP)
			select {
			case <-done:
				_ = syscall.Kill(pid, syscall.SIGCONT)
				return
			case <-time.After(slowStopped):
			}
			_ = syscall.Kill(pid, syscall.SIGCONT)
			// A spin, not a sleep: a sleep this short wakes late.
			for t := time.Now(); time.Since(t) < slowRunning; {
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
		for tid, set := range saved {
			_ = unix.SchedSetaffinity(tid, &set)
		}
		// Threads started while pinned inherited the one CPU.
		orig, ok := saved[pid]
		if !ok {
			orig = mine
		}
		_, _ = pinThreadsTo(pid, orig, saved)
	}, nil
}

// pinThreads pins every thread of pid to cpu and returns what each had.
func pinThreads(pid, cpu int) (map[int]unix.CPUSet, error) {
	var one unix.CPUSet
	one.Set(cpu)
	return pinThreadsTo(pid, one, nil)
}

// pinThreadsTo sets the CPUs of every thread of pid not in skip, and
// returns what each had.
func pinThreadsTo(pid int, set unix.CPUSet, skip map[int]unix.CPUSet) (map[int]unix.CPUSet, error) {
	ents, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "task"))
	if err != nil {
		return nil, fmt.Errorf("listing the threads of pid %d: %w", pid, err)
	}
	saved := map[int]unix.CPUSet{}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if _, done := skip[tid]; err != nil || done {
			continue
		}
		var had unix.CPUSet
		if unix.SchedGetaffinity(tid, &had) != nil {
			continue // the thread ended
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil {
			return saved, fmt.Errorf("pinning thread %d of pid %d: %w", tid, pid, err)
		}
		saved[tid] = had
	}
	return saved, nil
}

func cpuList(set unix.CPUSet) []int {
	var out []int
	for c := 0; c < 1024; c++ {
		if set.IsSet(c) {
			out = append(out, c)
		}
	}
	return out
}

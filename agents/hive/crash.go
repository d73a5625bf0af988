package hive

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"golang.org/x/sys/unix"
)

// noteCrash counts a crash and returns how many fall inside the crash-loop window.
func (s *supervised) noteCrash() int {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.crashN++
	kept := s.crashes[:0]
	for _, t := range s.crashes {
		if now.Sub(t) < crashLoopWindow {
			kept = append(kept, t)
		}
	}
	s.crashes = append(kept, now)
	return len(s.crashes)
}

// Reasons a worker is marked failed, as the metrics label them.
const (
	failCrashLoop = "crash_loop"
	failLoad      = "load_failed"
)

// fail marks the worker failed for good (until a PUT revives it).
func (s *supervised) fail(msg, reason string) {
	s.logs.Note(msg)
	s.h.log.Error("worker failed", "worker", s.id, "err", msg)
	s.h.metrics.failures.WithLabelValues(s.cfg.Pool, reason).Inc()
	s.update(func(st *hiveapi.WorkerStatus) { st.State, st.PID, st.LastError = hiveapi.StateFailed, 0, msg })
}

// startingNote begins the hive's note before each run of a worker.
const startingNote = "starting: "

// whyLines is how far back the worker's output is searched for the cause.
const whyLines = 200

// why picks the line of the worker's last output that says why it ended: the
// last one that mentions an error, a failed assertion or a panic, else the
// last line. The hive's own notes are skipped.
func (s *supervised) why() string {
	return whyLine(s.logs.Tail(whyLines))
}

func whyLine(lines []string) string {
	last := ""
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if strings.HasPrefix(l, hiveNotePrefix+startingNote) {
			break // output of an earlier run
		}
		if l == "" || strings.HasPrefix(l, hiveNotePrefix) {
			continue
		}
		if last == "" {
			last = l
		}
		low := strings.ToLower(l)
		for _, w := range []string{"error", "assert", "failed", "panic", "fatal"} {
			if strings.Contains(low, w) {
				return l
			}
		}
	}
	return last
}

// exitReason describes how a process ended.
func exitReason(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Sprintf("killed by signal %s", unix.SignalName(ws.Signal()))
		}
		return fmt.Sprintf("exited with status %d", ee.ExitCode())
	}
	if err != nil {
		return err.Error()
	}
	return "exited with status 0"
}

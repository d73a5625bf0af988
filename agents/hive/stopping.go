package hive

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"syscall"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/api"
)

// stopRun ends a run on request: a ready worker drains first, then the
// process group is terminated.
func (s *supervised) stopRun(cmd *exec.Cmd, exited chan error, client *workerapi.Client, ready bool) {
	if ready {
		s.drain(client, exited)
	}
	s.update(func(st *hiveapi.WorkerStatus) { st.State = hiveapi.StateStopping })
	s.terminate(cmd, exited)
}

// drainPoll is how often a draining worker is asked whether it is done.
const drainPoll = 100 * time.Millisecond

// drain asks a ready worker to refuse new requests and waits until none is
// in flight, the drain limit passes, or the process exits. A worker without
// the drain endpoint (404, an older binary) is stopped at once.
func (s *supervised) drain(client *workerapi.Client, exited chan error) {
	s.mu.Lock()
	limit := s.drainFor
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	if err := client.Drain(ctx); err != nil {
		if !api.HasStatus(err, http.StatusNotFound) {
			s.h.log.Warn("worker did not accept the drain; stopping it", "worker", s.id, "err", err)
		}
		return
	}
	s.update(func(st *hiveapi.WorkerStatus) { st.State = hiveapi.StateDraining })
	s.logs.Note(fmt.Sprintf("draining for at most %s", limit))
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for {
		r, err := client.Ready(ctx)
		if err == nil && r.InFlight == 0 {
			return
		}
		select {
		case err := <-exited:
			exited <- err // for terminate, which waits on it
			return
		case <-ctx.Done():
			s.h.log.Warn("worker still serving after its drain timeout; stopping it", "worker", s.id, "drain_timeout", limit, "in_flight", r.InFlight)
			return
		case <-tick.C:
		}
	}
}

// terminate stops the process group gracefully: SIGTERM, then SIGKILL after
// the grace period; it returns once the process is reaped.
func (s *supervised) terminate(cmd *exec.Cmd, exited chan error) {
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(s.h.cfg.StopGrace):
		s.h.log.Warn("worker did not stop in time; killing it", "worker", s.id, "grace", s.h.cfg.StopGrace)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
	}
	reapGroup(pgid)
	s.logs.Note("stopped")
}

// reapGroup kills what is left of a worker's process group and reaps the
// members that were reparented to the hive (it is a child subreaper), so that
// nothing a worker started outlives it, not even as a zombie.
func reapGroup(pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-pgid, &ws, syscall.WNOHANG, nil)
		if pid > 0 {
			continue
		}
		if err != nil || syscall.Kill(-pgid, 0) != nil {
			return // no child left in the group (ECHILD) or no member at all
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill ends the process group at once and reaps it.
func (s *supervised) kill(cmd *exec.Cmd, exited chan error) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
	reapGroup(cmd.Process.Pid)
}

package hive

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/backoff"
	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/api"
)

// Supervision policy.
const (
	crashLoopCount  = 5               // this many crashes …
	crashLoopWindow = 5 * time.Minute // … within this window mark a worker failed
	healthFailures  = 3               // consecutive failed health checks before a kill
	loadPoll        = 200 * time.Millisecond
	logLines        = 1000 // lines kept in memory per worker
)

// restartPolicy is the delay before restarting a crashed worker.
var restartPolicy = backoff.Policy{Base: 500 * time.Millisecond, Max: 30 * time.Second, Jitter: 0.2}

func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return time.ParseDuration(s)
}

// supervised is one worker the hive is meant to run: it spawns the process,
// waits for it to be ready, health-checks it, restarts it after a crash and
// stops it on request.
type supervised struct {
	h    *Hive
	id   string
	cfg  hiveapi.WorkerConfig // normalized
	hash string
	logs *logRing

	mu       sync.Mutex
	st       hiveapi.WorkerStatus
	crashes  []time.Time // crash times inside the crash-loop window
	crashN   int         // all crashes, for waiters
	changed  chan struct{}
	stop     chan struct{} // closed to stop the current run
	done     chan struct{} // closed when the current run has ended
	running  bool
	drainFor time.Duration // how long the stop in progress lets requests finish
	deleting bool          // guarded by Hive.opMu: a DELETE is stopping it

	hint chan struct{} // the worker's ready callback: poll now
}

func newSupervised(h *Hive, id string, cfg hiveapi.WorkerConfig, logs *logRing) *supervised {
	s := &supervised{h: h, id: id, cfg: cfg, hash: hiveapi.ConfigHash(cfg), logs: logs,
		changed: make(chan struct{}), hint: make(chan struct{}, 1), done: make(chan struct{})}
	close(s.done)
	s.st = hiveapi.WorkerStatus{ID: id, Model: cfg.Model, Pool: cfg.Pool, State: hiveapi.StateStarting,
		ConfigHash: s.hash, SlotsTotal: cfg.Slots, Config: cfg}
	return s
}

// update changes the status under the lock and wakes waiters.
func (s *supervised) update(f func(st *hiveapi.WorkerStatus)) {
	s.mu.Lock()
	f(&s.st)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// status returns a copy of the current status.
func (s *supervised) status() hiveapi.WorkerStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// start begins a run (spawn, supervise) unless one is active. A fresh run
// forgets earlier crashes, so a PUT can revive a failed worker.
func (s *supervised) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return
	}
	s.running = true
	s.crashes = nil
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	s.st.State = hiveapi.StateStarting
	go s.run(s.stop, s.done)
}

// stopAndWait ends the current run: the worker drains (new requests refused,
// those in flight finish, for at most its drain timeout), then SIGTERM to its
// process group, SIGKILL after the grace period; it returns once the process
// is reaped.
func (s *supervised) stopAndWait() { s.stopWithin(s.drainTimeout()) }

// drainTimeout is the worker's drain_timeout (DefaultDrainTimeout when unset).
func (s *supervised) drainTimeout() time.Duration {
	s.mu.Lock()
	v := s.cfg.DrainTimeout
	s.mu.Unlock()
	d, err := parseDuration(v)
	if err != nil || d <= 0 {
		return hiveapi.DefaultDrainTimeout
	}
	return d
}

// config returns the worker's configuration as it is now.
func (s *supervised) config() hiveapi.WorkerConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// setLive applies the settings of cfg (same ConfigHash) that a running worker
// takes without a restart; it reports whether anything changed.
func (s *supervised) setLive(cfg hiveapi.WorkerConfig) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.Live() == cfg.Live() {
		return false
	}
	s.cfg.SetLive(cfg.Live())
	s.st.Config = s.cfg
	return true
}

// timeouts are the worker's load and idle timeouts as they are now.
func (s *supervised) timeouts() (load, idle time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	load, _ = parseDuration(s.cfg.LoadTimeout)
	idle, _ = parseDuration(s.cfg.IdleTimeout)
	return load, idle
}

// stopWithin is stopAndWait with the drain bounded by limit.
func (s *supervised) stopWithin(limit time.Duration) {
	s.mu.Lock()
	s.drainFor = limit
	if s.running {
		select {
		case <-s.stop:
		default:
			close(s.stop)
		}
	}
	done := s.done
	s.mu.Unlock()
	<-done
}

// poke is the ready callback hint.
func (s *supervised) poke() {
	select {
	case s.hint <- struct{}{}:
	default:
	}
}

// outcome is how one worker process ended.
type outcome int

const (
	endCrash outcome = iota
	endStopped
	endIdle
	endLoadFailed // exited with workerapi.ExitLoadFailed: restarting cannot help
)

func (s *supervised) run(stop, done chan struct{}) {
	defer func() {
		s.mu.Lock()
		s.running = false
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
		close(done)
	}()
	for {
		end, reason := s.once(stop)
		switch end {
		case endStopped:
			s.update(func(st *hiveapi.WorkerStatus) { st.State, st.PID = hiveapi.StateStopped, 0 })
			return
		case endIdle:
			s.logs.Note("stopped after the idle timeout")
			s.h.log.Info("worker stopped after its idle timeout", "worker", s.id, "idle_timeout", s.config().IdleTimeout)
			s.update(func(st *hiveapi.WorkerStatus) { st.State, st.PID = hiveapi.StateStopped, 0 })
			return
		}
		n := s.noteCrash()
		lastErr := reason
		if why := s.why(); why != "" {
			lastErr += "; last output: " + why
		}
		if end == endLoadFailed {
			msg := "model load failed, not restarting: " + lastErr
			s.fail(msg, failLoad)
			return
		}
		if n >= crashLoopCount {
			s.fail(fmt.Sprintf("crash loop: %d crashes within %s, not restarting; last: %s", n, crashLoopWindow, lastErr), failCrashLoop)
			return
		}
		delay := s.h.restart.Delay(n)
		s.logs.Note(fmt.Sprintf("%s; restarting in %s", reason, delay.Round(time.Millisecond)))
		s.h.log.Warn("worker crashed; restarting", "worker", s.id, "reason", reason, "restart_in", delay.Round(time.Millisecond), "crashes_in_window", n)
		s.update(func(st *hiveapi.WorkerStatus) { st.State, st.PID, st.LastError = hiveapi.StateRestarting, 0, lastErr })
		select {
		case <-stop:
			s.update(func(st *hiveapi.WorkerStatus) { st.State = hiveapi.StateStopped })
			return
		case <-time.After(delay):
		}
		s.update(func(st *hiveapi.WorkerStatus) { st.Restarts++ })
		s.h.metrics.restarts.WithLabelValues(s.cfg.Pool).Inc()
	}
}

// once spawns the worker process and supervises it until it ends.
func (s *supervised) once(stop chan struct{}) (outcome, string) {
	m, ok := s.h.store.Get(s.cfg.Model)
	if !ok {
		return endCrash, fmt.Sprintf("model %q is not in the catalog (or its file is gone); provision it again", s.cfg.Model)
	}
	port, err := s.cfg.Port, error(nil)
	if port != 0 {
		err = s.h.ports.claim(s.id, port)
	} else {
		port, err = s.h.ports.allocate(s.id)
	}
	if err != nil {
		return endCrash, err.Error()
	}
	defer s.h.ports.release(port)
	args := []string{"worker",
		"--model", m.Path,
		"--port", strconv.Itoa(port),
		"--host", s.h.bindHost,
		"--slots", strconv.Itoa(s.cfg.Slots),
		"--ctx-size", strconv.Itoa(s.cfg.CtxSize),
		"--threads", strconv.Itoa(s.cfg.Threads),
		"--worker-id", s.id,
		"--callback-url", s.h.callbackURL(s.id),
	}
	if s.cfg.Backend != "" && s.cfg.Backend != hiveapi.BackendCPU {
		args = append(args, "--backend", s.cfg.Backend, "--device", strconv.Itoa(s.cfg.Device), "--gpu-layers", strconv.Itoa(s.cfg.GPULayers))
	}
	if s.cfg.FlashAttn {
		args = append(args, "--flash-attn")
	}
	if s.cfg.KVCacheType != "" {
		args = append(args, "--kv-cache-type", s.cfg.KVCacheType)
	}
	if s.cfg.ChatTemplate != "" {
		args = append(args, "--chat-template", s.cfg.ChatTemplate)
	}
	if s.cfg.Embeddings {
		args = append(args, "--embeddings")
	}
	if s.h.cfg.TokenFile != "" {
		args = append(args, "--token-file", s.h.cfg.TokenFile)
	}
	cmd := exec.Command(s.h.exe, args...)
	cmd.Env = s.h.env
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	// Own process group so a signal reaches the worker and anything it
	// starts; Pdeathsig covers a hive killed with SIGKILL. Regular shutdown
	// stops workers explicitly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	s.logs.Note(startingNote + s.h.exe + " " + strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		return endCrash, fmt.Sprintf("cannot start the worker: %v", err)
	}
	url := "http://" + net.JoinHostPort(s.h.advertiseHost, strconv.Itoa(port))
	s.update(func(st *hiveapi.WorkerStatus) {
		st.PID, st.Port, st.URL, st.State = cmd.Process.Pid, port, url, hiveapi.StateLoading
		st.StartedAt = time.Now().UTC()
		st.SlotsFree = 0
		st.Runtime = workerapi.Runtime{}
	})
	s.h.log.Info("worker started", "worker", s.id, "pid", cmd.Process.Pid, "port", port, "model", m.Name)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	end, reason := s.watch(cmd, exited, stop, port)
	return end, reason
}

// watch waits for readiness, then health-checks the process until it exits,
// fails its checks, idles out, or a stop is requested.
func (s *supervised) watch(cmd *exec.Cmd, exited chan error, stop chan struct{}, port int) (outcome, string) {
	client := workerapi.NewClient("http://"+net.JoinHostPort(s.h.pollHost, strconv.Itoa(port)), s.h.cfg.Token)
	client.HTTP = &http.Client{Timeout: 5 * time.Second}
	loadTimeout, _ := s.timeouts()
	loadDeadline := time.NewTimer(loadTimeout)
	defer loadDeadline.Stop()
	tick := time.NewTimer(loadPoll)
	defer tick.Stop()
	ready := false
	fails := 0
	var idleSince time.Time
	for {
		select {
		case err := <-exited:
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() == workerapi.ExitLoadFailed {
				return endLoadFailed, exitReason(err)
			}
			return endCrash, exitReason(err)
		case <-stop:
			s.stopRun(cmd, exited, client, ready)
			return endStopped, ""
		case <-loadDeadline.C:
			if !ready {
				s.kill(cmd, exited)
				return endCrash, fmt.Sprintf("not ready within the load timeout of %s", loadTimeout)
			}
		case <-s.hint:
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := client.Ready(ctx)
		cancel()
		switch {
		case err == nil && r.Ready:
			if !ready {
				s.h.log.Info("worker ready", "worker", s.id, "port", port)
			}
			ready, fails = true, 0
			loadDeadline.Stop()
			s.update(func(st *hiveapi.WorkerStatus) {
				st.State, st.SlotsTotal, st.SlotsFree, st.LastError = r.State, r.SlotsTotal, r.SlotsFree, ""
				st.Runtime = r.Runtime
			})
			_, idleTimeout := s.timeouts()
			interval := s.healthInterval(idleTimeout)
			if idleTimeout > 0 {
				if r.State == workerapi.StateIdle && r.SlotsFree == r.SlotsTotal {
					if idleSince.IsZero() {
						idleSince = time.Now()
					} else if time.Since(idleSince) >= idleTimeout {
						s.update(func(st *hiveapi.WorkerStatus) { st.State = hiveapi.StateStopping })
						s.terminate(cmd, exited)
						return endIdle, ""
					}
				} else {
					idleSince = time.Time{}
				}
			}
			tick.Reset(interval)
		case ready:
			fails++
			if err == nil {
				err = fmt.Errorf("state %q", r.State)
			}
			s.h.log.Warn("worker health check failed", "worker", s.id, "failures", fails, "err", err)
			if fails >= healthFailures {
				s.kill(cmd, exited)
				return endCrash, fmt.Sprintf("failed %d health checks in a row: %v", fails, err)
			}
			tick.Reset(min(s.h.cfg.HealthInterval, time.Second))
		default:
			tick.Reset(loadPoll)
		}
	}
}

// healthInterval is how often a ready worker is checked: the hive's
// interval, or half the idle timeout when that is shorter.
func (s *supervised) healthInterval(idle time.Duration) time.Duration {
	if idle > 0 && idle/2 < s.h.cfg.HealthInterval {
		return max(idle/2, 100*time.Millisecond)
	}
	return s.h.cfg.HealthInterval
}

// waitReady blocks until the worker is ready; it fails if the worker
// crashes or fails first, or ctx ends.
func (s *supervised) waitReady(ctx context.Context) (hiveapi.WorkerStatus, error) {
	s.mu.Lock()
	crashes := s.crashN
	s.mu.Unlock()
	for {
		s.mu.Lock()
		st, ch, crashed, running := s.st, s.changed, s.crashN > crashes, s.running
		s.mu.Unlock()
		switch {
		case hiveapi.Ready(st.State):
			return st, nil
		case crashed || st.State == hiveapi.StateFailed:
			return st, api.Errorf(http.StatusBadGateway, "WORKER_START_FAILED", "worker %q did not start: %s", s.id, st.LastError).
				WithDetails(map[string]any{"worker": st, "logs": s.logs.Tail(20)})
		case !running:
			return st, api.Errorf(http.StatusConflict, "WORKER_STOPPED", "worker %q was stopped before it became ready", s.id)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return st, ctx.Err()
		}
	}
}

// refresh asks a ready worker for its live state (idle/busy, free slots).
func (s *supervised) refresh(ctx context.Context) {
	st := s.status()
	if !hiveapi.Ready(st.State) {
		return
	}
	client := workerapi.NewClient("http://"+net.JoinHostPort(s.h.pollHost, strconv.Itoa(st.Port)), s.h.cfg.Token)
	r, err := client.Ready(ctx)
	if err != nil || !r.Ready {
		return
	}
	s.update(func(cur *hiveapi.WorkerStatus) {
		if cur.PID == st.PID && hiveapi.Ready(cur.State) {
			cur.State, cur.SlotsTotal, cur.SlotsFree = r.State, r.SlotsTotal, r.SlotsFree
		}
	})
}

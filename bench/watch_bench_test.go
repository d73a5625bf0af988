package bench

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/internal/testsshd"
)

// Settings of the watch benchmark.
const (
	watchEdits    = 15                     // saves measured in plan-only mode
	watchLiveRuns = 6                      // saves measured with a real apply
	watchDebounce = 300 * time.Millisecond // rbee watch's default
	watchGoal     = time.Second            // save → start of apply
)

const watchBenchFleet = `node "local" {
  connection = "local"
  hive_port  = %d
}

model "tiny" {
  source = "synth:tiny"
}

pool "chat" {
  model    = "tiny"
  nodes    = ["local"]
  replicas = %d
  slots    = 1
  ctx_size = 256
}
`

// watchStatus is the part of GET /v1/status the benchmark reads.
type watchStatus struct {
	Phase    string `json:"phase"`
	LastPlan *struct {
		Trigger    string     `json:"trigger"`
		EventAt    *time.Time `json:"event_at"`
		FinishedAt time.Time  `json:"finished_at"`
	} `json:"last_plan"`
	LastApply *struct {
		Trigger    string     `json:"trigger"`
		EventAt    *time.Time `json:"event_at"`
		StartedAt  time.Time  `json:"started_at"`
		FinishedAt *time.Time `json:"finished_at"`
		OK         bool       `json:"ok"`
		Error      string     `json:"error"`
	} `json:"last_apply"`
}

// BenchmarkWatchSaveToApply measures how long `rbee watch` takes from a save
// of rbee.hcl to the start of the apply it causes, as a median over repeated
// edits (goal ≤ 1 s; the configured debounce of 300 ms is part of it):
//
//  1. plan-only: the edit changes the replicas, the daemon plans; "start of
//     apply" is the moment the plan is ready (the daemon would apply next).
//  2. live: a real hive on this machine; each edit toggles the replicas
//     between 1 and 2, so every save spawns or stops a worker. Measured to
//     the moment the apply starts (after refresh, plan and the state lock).
//
// The baseline, measured in the same run, is what an operator does by hand:
// `rbee plan` as a command (process start, load, refresh, plan).
func BenchmarkWatchSaveToApply(b *testing.B) {
	bin := rbeeBinary(b)
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		hivePort := watchFreePort(b)
		cfg := filepath.Join(dir, "rbee.hcl")
		write := func(replicas int) {
			if err := os.WriteFile(cfg, fmt.Appendf(nil, watchBenchFleet, hivePort, replicas), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		write(1)

		// Baseline: rbee plan by hand, against the empty state (nothing to refresh).
		var manual []float64
		for range 5 {
			start := time.Now()
			out, err := exec.Command(bin, "plan", "--config", cfg, "-lock=false").CombinedOutput()
			if err != nil {
				b.Fatalf("rbee plan: %v\n%s", err, out)
			}
			manual = append(manual, millis(time.Since(start)))
		}

		// 1. plan-only.
		planOnly := watchLatencies(b, bin, dir, cfg, write, watchEdits, true)

		// 2. live: the daemon applies; first bring the fleet up, then toggle.
		live := watchLatencies(b, bin, dir, cfg, write, watchLiveRuns, false)

		mp, ml, mm := median(planOnly), median(live), median(manual)
		b.ReportMetric(mp, "ms-save-to-plan")
		b.ReportMetric(ml, "ms-save-to-apply")
		b.ReportMetric(mm, "ms-manual-plan")
		b.ReportMetric(ml/millis(watchGoal), "apply-latency/goal")
		b.ReportMetric(ml/mm, "apply-latency/manual-plan")
		b.Logf("save → plan ready (plan-only), median of %d: %.0f ms (min %.0f, max %.0f); debounce %s, so the daemon adds %.0f ms",
			len(planOnly), mp, slices.Min(planOnly), slices.Max(planOnly), watchDebounce, mp-millis(watchDebounce))
		b.Logf("save → apply starts (live hive, worker added/removed each save), median of %d: %.0f ms (min %.0f, max %.0f); goal ≤ %.0f ms → %.2f of the goal",
			len(live), ml, slices.Min(live), slices.Max(live), millis(watchGoal), ml/millis(watchGoal))
		b.Logf("baseline: `rbee plan` by hand, median of %d: %.0f ms; the daemon's save → apply is %.2f× that (and needs no one at the keyboard)",
			len(manual), mm, ml/mm)
	}
}

// watchLatencies runs a daemon in dir and returns the save → plan-ready
// (planOnly) or save → apply-start latencies of n edits, in ms.
func watchLatencies(b *testing.B, bin, dir, cfg string, write func(int), n int, planOnly bool) []float64 {
	b.Helper()
	listen := "127.0.0.1:" + strconv.Itoa(watchFreePort(b))
	args := []string{"watch", "--config", cfg, "--listen", listen, "--interval", "1h", "--debounce", watchDebounce.String()}
	if planOnly {
		args = append(args, "--plan-only")
	}
	write(1)
	daemon := exec.Command(bin, args...)
	logPath := filepath.Join(dir, fmt.Sprintf("watch-plan-only-%v.log", planOnly))
	logFile, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	defer logFile.Close()
	daemon.Stdout, daemon.Stderr = logFile, logFile
	daemon.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := daemon.Start(); err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- daemon.Wait() }()
	defer func() {
		_ = daemon.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			_ = syscall.Kill(-daemon.Process.Pid, syscall.SIGKILL)
		}
		if !planOnly {
			if out, err := exec.Command(bin, "destroy", "-auto-approve", "--config", cfg).CombinedOutput(); err != nil {
				b.Logf("rbee destroy: %v\n%s", err, out)
			}
			testsshd.StopProcessesUnder(dir)
		}
	}()
	status := func() watchStatus {
		var st watchStatus
		resp, err := http.Get("http://" + listen + "/v1/status")
		if err != nil {
			return st
		}
		defer resp.Body.Close()
		_ = json.NewDecoder(resp.Body).Decode(&st)
		return st
	}
	wait := func(what string, ok func(watchStatus) bool) watchStatus {
		deadline := time.Now().Add(3 * time.Minute)
		for time.Now().Before(deadline) {
			select {
			case err := <-done:
				b.Fatalf("the daemon exited (%v):\n%s", err, readLog(logPath))
			default:
			}
			if st := status(); ok(st) {
				return st
			}
			time.Sleep(10 * time.Millisecond)
		}
		b.Fatalf("the daemon never got to %s:\n%s", what, readLog(logPath))
		return watchStatus{}
	}
	// The pass at start: plan (plan-only) or bring the fleet up (live).
	wait("its first pass", func(st watchStatus) bool {
		if planOnly {
			return st.LastPlan != nil && st.Phase == "idle"
		}
		return st.LastApply != nil && st.LastApply.FinishedAt != nil && st.Phase == "idle"
	})
	var out []float64
	replicas := 1
	for i := range n {
		replicas = 3 - replicas // 1 ↔ 2
		saved := time.Now()
		write(replicas)
		st := wait(fmt.Sprintf("edit %d", i+1), func(st watchStatus) bool {
			if planOnly {
				return st.LastPlan != nil && st.LastPlan.EventAt != nil && !st.LastPlan.EventAt.Before(saved) && st.Phase == "idle"
			}
			a := st.LastApply
			return a != nil && a.EventAt != nil && !a.EventAt.Before(saved) && a.FinishedAt != nil && st.Phase == "idle"
		})
		if planOnly {
			out = append(out, millis(st.LastPlan.FinishedAt.Sub(saved)))
			continue
		}
		if !st.LastApply.OK {
			b.Fatalf("apply after edit %d failed: %s", i+1, st.LastApply.Error)
		}
		out = append(out, millis(st.LastApply.StartedAt.Sub(saved)))
	}
	return out
}

func readLog(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func watchFreePort(b *testing.B) int {
	b.Helper()
	p, err := testsshd.FreePort("127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	return p
}

package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/planner"
	"github.com/rbee-dev/rbee/state"
)

// planBenchConfig generates a configuration of n SSH nodes and 3 pools (of 3
// models) that each run on every node: 3n workers and 3n model copies.
func planBenchConfig(n int) []byte {
	var sb strings.Builder
	names := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("%q", fmt.Sprintf("node-%d", i))
		fmt.Fprintf(&sb, "node \"node-%d\" {\n  host = \"10.%d.%d.%d\"\n  user = \"rbee\"\n}\n", i, i>>16&255, i>>8&255, i&255)
	}
	all := strings.Join(names, ", ")
	for p, m := range []string{"chat", "code", "embed"} {
		fmt.Fprintf(&sb, "model %q { source = \"synth:%s\" }\n", m, m)
		fmt.Fprintf(&sb, "pool %q {\n  model    = %q\n  nodes    = [%s]\n  ctx_size = %d\n  slots    = 2\n}\n", m, m, all, 1024<<p)
	}
	return []byte(sb.String())
}

// planOnce decodes and validates the configuration and plans it against
// snap without refresh: what `rbee plan -refresh=false` computes.
func planOnce(b *testing.B, src []byte, snap *state.Snapshot) *planner.Plan {
	cfg, diags := config.Parse(map[string][]byte{"rbee.hcl": src}, config.LoadOptions{Environ: []string{}, StateDir: "/srv/.rbee"})
	if diags.HasErrors() {
		b.Fatal(diags.Err(), diags.Diags[0])
	}
	p, err := planner.Make(context.Background(), cfg, snap, planner.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// cpuTime is the CPU time (user + system) this process has used so far. On a
// shared machine it measures the work done better than wall time does.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPlan measures plan time (decode + validate + diff, no refresh) for
// generated fleets of 100, 1000 and 10000 nodes with 3 pools each, in two
// cases: against an empty state (everything is created) and against the
// state a finished apply recorded (no changes: every record is compared).
// It reports the median of a few runs per size and the ratios 1000/100 and
// 10000/1000 (linear scaling = 10), in wall time and in CPU time (the
// process's user + system time, which other load on the machine does not
// inflate).
func BenchmarkPlan(b *testing.B) {
	sizes := []int{100, 1000, 10000}
	reps := map[int]int{100: 7, 1000: 5, 10000: 3}
	type timing struct{ wall, cpu time.Duration }
	type result struct{ empty, applied timing }
	res := map[int]result{}
	for _, n := range sizes {
		src := planBenchConfig(n)
		cfg, _ := config.Parse(map[string][]byte{"rbee.hcl": src}, config.LoadOptions{Environ: []string{}, StateDir: "/srv/.rbee"})
		recorded, err := planner.Desired(cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range recorded.Nodes {
			r.Status = state.NodeReady
		}
		for _, r := range recorded.Models {
			r.Status = state.ModelReady
		}
		for _, r := range recorded.Workers {
			r.State = state.WorkerIdle
		}
		measure := func(snap *state.Snapshot, wantChanges int) timing {
			var walls, cpus []time.Duration
			for range reps[n] {
				start, startCPU := time.Now(), cpuTime()
				p := planOnce(b, src, snap)
				walls, cpus = append(walls, time.Since(start)), append(cpus, cpuTime()-startCPU)
				if len(p.Changes) != wantChanges {
					b.Fatalf("%d nodes: %d changes, want %d", n, len(p.Changes), wantChanges)
				}
			}
			slices.Sort(walls)
			slices.Sort(cpus)
			return timing{walls[len(walls)/2], cpus[len(cpus)/2]}
		}
		res[n] = result{empty: measure(state.NewSnapshot(), n+6*n), applied: measure(recorded, 0)}
		b.ReportMetric(float64(res[n].empty.wall.Microseconds())/1000, fmt.Sprintf("ms-create-%d", n))
		b.ReportMetric(float64(res[n].applied.wall.Microseconds())/1000, fmt.Sprintf("ms-nochange-%d", n))
	}
	ratio := func(a, c time.Duration) float64 { return float64(a) / float64(c) }
	b.ReportMetric(ratio(res[1000].applied.wall, res[100].applied.wall), "ratio-1000/100")
	b.ReportMetric(ratio(res[1000].applied.cpu, res[100].applied.cpu), "cpu-ratio-1000/100")
	b.ReportMetric(ratio(res[10000].applied.cpu, res[1000].applied.cpu), "cpu-ratio-10000/1000")
	for _, n := range sizes {
		b.Logf("plan %5d nodes × 3 pools: from empty state %9s (cpu %9s), nothing to change %9s (cpu %9s)", n,
			res[n].empty.wall.Round(time.Microsecond), res[n].empty.cpu.Round(time.Microsecond),
			res[n].applied.wall.Round(time.Microsecond), res[n].applied.cpu.Round(time.Microsecond))
	}
	b.Logf("plan scaling, nothing to change (linear = 10): 1000/100 = %.1f wall, %.1f cpu; 10000/1000 = %.1f wall, %.1f cpu",
		ratio(res[1000].applied.wall, res[100].applied.wall), ratio(res[1000].applied.cpu, res[100].applied.cpu),
		ratio(res[10000].applied.wall, res[1000].applied.wall), ratio(res[10000].applied.cpu, res[1000].applied.cpu))
	b.Logf("plan scaling, from empty state (linear = 10): 1000/100 = %.1f wall, %.1f cpu; 10000/1000 = %.1f wall, %.1f cpu",
		ratio(res[1000].empty.wall, res[100].empty.wall), ratio(res[1000].empty.cpu, res[100].empty.cpu),
		ratio(res[10000].empty.wall, res[1000].empty.wall), ratio(res[10000].empty.cpu, res[1000].empty.cpu))
}

package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/internal/testsshd"
)

// applyBenchNodes is the size of the large fleet; the baseline is one node.
const applyBenchNodes = 8

// BenchmarkApplySSH measures `rbee apply` of fresh nodes over real SSH: an
// OpenSSH server per node on its own loopback address (127.0.0.2 ...), each
// apply installing the hive (SCP of the binary, sha256 check, start, health),
// provisioning the synth:tiny model and starting one worker per node. It
// reports apply(8 nodes) ÷ apply(1 node), both measured in the same run; with
// nodes applied in parallel the goal is ≤ 2. Every measured apply starts from
// nothing (destroy in between, not timed).
func BenchmarkApplySSH(b *testing.B) {
	bin := rbeeBinary(b)
	if _, err := os.Stat(testsshd.Binary); err != nil {
		b.Skipf("needs OpenSSH server at %s", testsshd.Binary)
	}
	dir := b.TempDir()
	keys, err := testsshd.NewKeys(filepath.Join(dir, "ssh"))
	if err != nil {
		b.Fatal(err)
	}
	hosts := make([]applyBenchHost, applyBenchNodes)
	for i := range hosts {
		name := fmt.Sprintf("n%d", i+1)
		addr := fmt.Sprintf("127.0.0.%d", i+2)
		s, err := keys.Start(name, addr, filepath.Join(dir, "sshd", name))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Stop()
		port, err := testsshd.FreePort(addr)
		if err != nil {
			b.Fatal(err)
		}
		hosts[i] = applyBenchHost{name: name, addr: addr, sshPort: s.Port, hivePort: port, dir: filepath.Join(dir, "hosts", name)}
	}
	defer testsshd.StopProcessesUnder(dir)

	one := applyBenchFleet(b, dir, "one", keys, hosts[:1])
	all := applyBenchFleet(b, dir, "all", keys, hosts)
	env := append(os.Environ(), "RBEE_KNOWN_HOSTS="+keys.KnownHosts, "NO_COLOR=1")

	for range b.N {
		// Warm-up: the first apply pays for cold caches (binary pages, sshd keys).
		applyBenchRun(b, bin, env, one, "apply")
		applyBenchRun(b, bin, env, one, "destroy")
		var t1, t8, c1, c8, k1, k8 time.Duration
		const rounds = 2
		for range rounds {
			c := machineCPU()
			d, k := applyBenchRunCPU(b, bin, env, one, "apply")
			t1, k1 = t1+d, k1+k
			c1 += machineCPU() - c
			applyBenchRun(b, bin, env, one, "destroy")
			c = machineCPU()
			d, k = applyBenchRunCPU(b, bin, env, all, "apply")
			t8, k8 = t8+d, k8+k
			c8 += machineCPU() - c
			applyBenchRun(b, bin, env, all, "destroy")
		}
		t1, t8, c1, c8, k1, k8 = t1/rounds, t8/rounds, c1/rounds, c8/rounds, k1/rounds, k8/rounds
		ratio := t8.Seconds() / t1.Seconds()
		b.ReportMetric(t1.Seconds(), "s/apply-1-node")
		b.ReportMetric(t8.Seconds(), "s/apply-8-nodes")
		b.ReportMetric(ratio, "8-nodes/1-node")
		verdict := "meets"
		if ratio > 2 {
			verdict = "MISSES"
		}
		b.Logf("apply over SSH, fresh nodes (hive + synth:tiny + 1 worker each): 1 node %.2fs, %d nodes %.2fs, ratio %.2f (goal ≤ 2: %s); "+
			"CPU time of the rbee client %.2fs vs %.2fs, of the whole machine during the apply (client, sshd, hives, workers, and anything else running) %.1fs vs %.1fs on %d cores; load average %s",
			t1.Seconds(), applyBenchNodes, t8.Seconds(), ratio, verdict, k1.Seconds(), k8.Seconds(), c1.Seconds(), c8.Seconds(), runtime.NumCPU(), loadAverage())
	}
}

// machineCPU is the busy CPU time of the whole machine so far (/proc/stat),
// or 0 where that file does not exist.
func machineCPU() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / 100 // USER_HZ
}

type applyBenchHost struct {
	name, addr, dir   string
	sshPort, hivePort int
}

// applyBenchFleet writes a configuration folder for hosts and returns it.
func applyBenchFleet(b *testing.B, dir, name string, keys *testsshd.Keys, hosts []applyBenchHost) string {
	var cfg strings.Builder
	var names []string
	for _, h := range hosts {
		fmt.Fprintf(&cfg, "node %q {\n  host = %q\n  port = %d\n  user = %q\n  identity = %q\n  install_dir = %q\n  hive_port = %d\n}\n",
			h.name, h.addr, h.sshPort, keys.User, keys.ClientKey, h.dir, h.hivePort)
		names = append(names, fmt.Sprintf("%q", h.name))
	}
	fmt.Fprintf(&cfg, "model \"tiny\" {\n  source = \"synth:tiny\"\n}\npool \"bench\" {\n  model = \"tiny\"\n  nodes = [%s]\n  slots = 1\n  ctx_size = 256\n}\n", strings.Join(names, ", "))
	folder := filepath.Join(dir, "fleet-"+name)
	if err := os.MkdirAll(folder, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(folder, "rbee.hcl"), []byte(cfg.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return folder
}

// applyBenchRun runs `rbee apply|destroy -auto-approve` on a fleet folder and returns its wall time.
func applyBenchRun(b *testing.B, bin string, env []string, folder, verb string) time.Duration {
	d, _ := applyBenchRunCPU(b, bin, env, folder, verb)
	return d
}

// applyBenchRunCPU is applyBenchRun that also returns the CPU time of the rbee client process.
func applyBenchRunCPU(b *testing.B, bin string, env []string, folder, verb string) (time.Duration, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, verb, "-auto-approve", "--config", folder)
	cmd.Env = env
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("rbee %s %s: %v\n%s", verb, folder, err, out)
	}
	return d, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchRounds is how many interleaved rounds a benchmark takes the median
// of: 5, or $RBEE_BENCH_ROUNDS.
func benchRounds() int {
	if n, err := strconv.Atoi(os.Getenv("RBEE_BENCH_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 5
}

// rbeeBinary is the binary under test ($RBEE_BIN); the benchmark is skipped without it.
func rbeeBinary(b *testing.B) string {
	bin := os.Getenv("RBEE_BIN")
	if bin == "" {
		b.Skip("set RBEE_BIN to the rbee binary (just bench does)")
	}
	return bin
}

// benchModel is the TinyLlama-shaped Q4_0 synth model, generated once into
// the user's cache folder and shared by the benchmarks.
func benchModel(b *testing.B, bin string) string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "rbee", "bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "tinyllama-q4_0-seed1.gguf")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	b.Logf("generating %s (once; cached afterwards)", path)
	out, err := exec.Command(bin, "model", "synth", "--preset", "tinyllama-q4_0", "--seed", "1", "--out", path).CombinedOutput()
	if err != nil {
		b.Fatalf("rbee model synth: %v\n%s", err, out)
	}
	return path
}

// medianRatio is the median of num[i] ÷ den[i]: pairs measured back to back
// share the load of the moment, so their ratio resists load that drifts
// from one pair to the next better than a ratio of medians does.
func medianRatio(num, den []float64) float64 {
	ratios := make([]float64, len(num))
	for i := range num {
		ratios[i] = num[i] / den[i]
	}
	return median(ratios)
}

// median of xs (0 for none).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	switch {
	case n == 0:
		return 0
	case n%2 == 1:
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// millis is d in fractional milliseconds.
func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// loadAverage is the 1-, 5- and 15-minute load average, to judge how noisy
// the figures are.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

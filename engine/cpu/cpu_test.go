package cpu

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestRequiredAndMissing(t *testing.T) {
	v2 := []string{"cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"}
	v3 := append(slices.Clone(v2), "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave")
	tests := []struct {
		level   string
		have    []string
		missing []string
	}{
		{"native", nil, nil},
		{"", nil, nil},
		{"x86-64-v2", v2, nil},
		{"x86-64-v3", v2, []string{"abm", "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "movbe", "xsave"}},
		{"x86-64-v3", v3, nil},
		{"x86-64-v3", append(slices.DeleteFunc(slices.Clone(v3), func(s string) bool { return s == "abm" }), "lzcnt"), nil},
		{"x86-64-v4", v3, []string{"avx512bw", "avx512cd", "avx512dq", "avx512f", "avx512vl"}},
	}
	for _, tt := range tests {
		got := Missing(Required(tt.level), tt.have)
		if !slices.Equal(got, tt.missing) {
			t.Errorf("level %q: missing %v, want %v", tt.level, got, tt.missing)
		}
	}
}

func TestParseFlags(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cpuinfo")
	os.WriteFile(p, []byte("processor\t: 0\nmodel name\t: X\nflags\t\t: sse2 avx2 fma\n\nprocessor\t: 1\nflags\t: sse2\n"), 0o644)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := parseFlags(f)
	if err != nil || !slices.Equal(got, []string{"avx2", "fma", "sse2"}) {
		t.Fatalf("parseFlags = %v, %v", got, err)
	}
}

func TestCheckThisHost(t *testing.T) {
	BuildLevel = "native"
	if err := Check(); err != nil {
		t.Fatalf("native level must pass: %v", err)
	}
	if PhysicalCores() < 1 {
		t.Fatal("no cores")
	}
}

func TestGoProcs(t *testing.T) {
	for _, c := range []struct{ cpus, threads, want int }{
		{2, 2, 1},    // every core computes: Go code gets one P
		{2, 1, 1},    // two workers of one thread each on two cores
		{32, 16, 16}, // SMT siblings left over
		{4, 8, 1},    // more threads than CPUs
	} {
		if got := GoProcs(c.cpus, c.threads); got != c.want {
			t.Errorf("GoProcs(%d, %d) = %d, want %d", c.cpus, c.threads, got, c.want)
		}
	}
}

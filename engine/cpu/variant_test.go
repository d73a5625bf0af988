package cpu

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Flag sets of real CPU generations, as /proc/cpuinfo spells them.
var (
	flagsNehalem = []string{"sse2", "ssse3", "sse4_1", "sse4_2", "popcnt"}
	flagsHaswell = append(slices.Clone(flagsNehalem), "avx", "avx2", "f16c", "fma", "bmi1", "bmi2")
	flagsSkylake = append(slices.Clone(flagsHaswell), "avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw")
	flagsZen5    = append(slices.Clone(flagsSkylake), "avx512vbmi", "avx512_vnni", "avx512_bf16", "avx_vnni")
	flagsAlder   = append(slices.Clone(flagsHaswell), "avx_vnni")
)

func TestVariantScoreMatchesGGML(t *testing.T) {
	// Scores as ggml_backend_cpu_x86_score computes them for each library.
	tests := []struct {
		variant string
		have    []string
		score   int
	}{
		{"x64", nil, 1},
		{"sse42", flagsNehalem, 1 + 4},
		{"sandybridge", flagsNehalem, 0},
		{"haswell", flagsHaswell, 1 + 1 + 2 + 4 + 8 + 16 + 32},
		{"haswell", flagsNehalem, 0},
		{"skylakex", flagsHaswell, 0},
		{"skylakex", flagsSkylake, 64 + 128},
		{"icelake", flagsSkylake, 0},
		{"icelake", flagsZen5, 64 + 128 + 256 + 1024},
		{"alderlake", flagsZen5, 64 + 64},
		{"alderlake", flagsSkylake, 0},
	}
	for _, tt := range tests {
		v, ok := VariantByName(tt.variant)
		if !ok {
			t.Fatalf("no variant %q", tt.variant)
		}
		if got := v.Score(tt.have); got != tt.score {
			t.Errorf("%s on %v: score %d, want %d", tt.variant, tt.have, got, tt.score)
		}
	}
}

func TestBestVariant(t *testing.T) {
	all := []string{"x64", "sse42", "sandybridge", "haswell", "skylakex", "icelake", "alderlake"}
	tests := []struct {
		name    string
		shipped []string
		have    []string
		want    string // "" when none runs
	}{
		{"zen5 takes icelake over alderlake", all, flagsZen5, "icelake"},
		{"skylake server", all, flagsSkylake, "skylakex"},
		{"alder lake client", all, flagsAlder, "alderlake"},
		{"haswell", all, flagsHaswell, "haswell"},
		{"old CPU", all, flagsNehalem, "sse42"},
		{"limited folder on a new CPU", []string{"haswell"}, flagsZen5, "haswell"},
		{"old CPU, only new libraries", []string{"haswell", "icelake"}, flagsNehalem, ""},
		{"unknown names are skipped", []string{"future9000"}, flagsZen5, ""},
		{"empty folder", nil, flagsZen5, ""},
	}
	for _, tt := range tests {
		v, ok := Best(tt.shipped, tt.have)
		if got := map[bool]string{true: v.Name, false: ""}[ok]; got != tt.want {
			t.Errorf("%s: best %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestVariantOfLibrary(t *testing.T) {
	tests := []struct {
		path string
		name string
		ok   bool
	}{
		{"/opt/rbee/lib/ollama/libggml-cpu-icelake.so", "icelake", true},
		{"libggml-cpu-haswell.so", "haswell", true},
		{"/opt/rbee/rbee", "", false},
		{"libggml-base.so.0", "", false},
		{"libggml-cpu-.so", "", false},
		{"libggml-cpu-icelake.so.1", "", false},
		{"libggml-cuda.so", "", false},
	}
	for _, tt := range tests {
		name, ok := VariantOfLibrary(tt.path)
		if name != tt.name || ok != tt.ok {
			t.Errorf("VariantOfLibrary(%q) = %q, %v; want %q, %v", tt.path, name, ok, tt.name, tt.ok)
		}
	}
}

func TestLibraryVariantsReadsTheFolder(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"libggml-base.so.0", "libggml-cpu-haswell.so", "libggml-cpu-icelake.so", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "libggml-cpu-skylakex.so"), 0o755); err != nil {
		t.Fatal(err)
	}
	got := LibraryVariants(dir)
	slices.Sort(got)
	if want := []string{"haswell", "icelake"}; !slices.Equal(got, want) {
		t.Errorf("LibraryVariants = %v, want %v", got, want)
	}
	if got := LibraryVariants(filepath.Join(dir, "missing")); got != nil {
		t.Errorf("a missing folder lists %v", got)
	}
}

func TestBuiltinVariantNamesTheBuildLevel(t *testing.T) {
	saved := BuildLevel
	t.Cleanup(func() { BuildLevel = saved })
	BuildLevel = "x86-64-v3"
	if got := BuiltinVariant(); got != "builtin-x86-64-v3" {
		t.Errorf("BuiltinVariant = %q", got)
	}
	BuildLevel = ""
	if got := BuiltinVariant(); got != "builtin" {
		t.Errorf("BuiltinVariant with no level = %q", got)
	}
}

package engine

import (
	"os"
	"slices"
	"testing"

	"github.com/rbee-dev/rbee/engine/cpu"
)

// TestBackendIsWhatGGMLLoaded checks that the backend a loaded engine reports
// is the CPU library ggml really took, and that it is the one rbee's copy of
// ggml's scoring predicts for the folder (the hive reports that prediction).
// With OLLAMA_LIBRARY_PATH unset the test binary has no library folder and
// runs the built-in kernels; set it to a folder of libraries to check those.
func TestBackendIsWhatGGMLLoaded(t *testing.T) {
	e := load(t, Options{Slots: 1, CtxSize: 128})
	b := e.Info().Backend
	if b.Name != "cpu" {
		t.Errorf("backend %q, want cpu", b.Name)
	}
	if want := cpu.HostVariant(cpu.LibraryDir()); b.CPUVariant != want {
		t.Errorf("ggml computes with %q, the prediction for %s is %q", b.CPUVariant, cpu.LibraryDir(), want)
	}
	if name, ok := cpu.VariantOfLibrary(b.Library); b.Library != "" && (!ok || name != b.CPUVariant) {
		t.Errorf("library %s does not hold variant %s", b.Library, b.CPUVariant)
	}
	if _, set := os.LookupEnv(cpu.LibraryPathEnv); !set && b.Library != "" {
		t.Errorf("no library folder, yet ggml loaded %s", b.Library)
	}
	// Every x86-64 variant rbee ships kernels for has at least SSE3.
	if cpu.HostIsX86() && !slices.Contains(b.Features, "SSE3") {
		t.Errorf("features %v lack SSE3: they were not read from the CPU backend", b.Features)
	}
	if got := CurrentBackend(); got.CPUVariant != b.CPUVariant {
		t.Errorf("CurrentBackend %q differs from the engine's %q", got.CPUVariant, b.CPUVariant)
	}
}

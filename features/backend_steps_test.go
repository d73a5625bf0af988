package features

// Steps for the ggml backend libraries (@backend): the library folder beside
// the binary under test, and folders limited to some CPU variants.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cucumber/godog"

	"github.com/rbee-dev/rbee/engine/cpu"
)

func init() { stepSets = append(stepSets, registerBackendSteps) }

// binaryLibraryDir is the library folder a worker of the binary under test
// loads from.
func binaryLibraryDir() string { return filepath.Join(filepath.Dir(rbeeBin), cpu.LibraryFolder) }

func registerBackendSteps(sc *godog.ScenarioContext, w *world) {
	// The variant ggml should pick, computed from the folder and
	// /proc/cpuinfo by rbee's own copy of ggml's scoring, is $CPU_VARIANT;
	// the worker reports what ggml really loaded.
	sc.Step(`^the ggml library folder beside the rbee binary$`, func() error {
		dir := binaryLibraryDir()
		if len(cpu.LibraryVariants(dir)) == 0 {
			return fmt.Errorf("no ggml CPU libraries in %s: build them with `just build` (scripts/ggml-libs.sh %s)", dir, dir)
		}
		w.vars["CPU_VARIANT"] = cpu.HostVariant(dir)
		return nil
	})
	sc.Step(`^the CPU variant "([^"]*)" uses AVX-512 when this CPU has it$`, func(name string) error {
		have, err := cpu.HostFeatures()
		if err != nil {
			return err
		}
		name = w.expand(name)
		if !slices.Contains(have, "avx512f") || !cpu.HostIsX86() {
			return nil
		}
		v, ok := cpu.VariantByName(name)
		if !ok || v.Score(have) < 1<<7 {
			return fmt.Errorf("this CPU has AVX-512, but the worker computes with %q; is an AVX-512 library (skylakex, icelake) in %s?", name, binaryLibraryDir())
		}
		return nil
	})
	// rbee state list -json: one object per resource; the one of address
	// has path (dotted, from the object) equal to want.
	sc.Step(`^the state list JSON of "([^"]*)" has "([^"]*)" equal to "([^"]*)"$`, func(addr, path, want string) error {
		for _, line := range strings.Split(strings.TrimSpace(w.stdout), "\n") {
			var doc map[string]any
			if err := json.Unmarshal([]byte(line), &doc); err != nil {
				return fmt.Errorf("a line of stdout is not JSON: %v: %s", err, line)
			}
			if doc["address"] != addr {
				continue
			}
			v, err := jsonPath(doc, path)
			if err != nil {
				return fmt.Errorf("%v in %s", err, line)
			}
			if got := fmt.Sprint(v); got != w.expand(want) {
				return fmt.Errorf("%s of %s = %s, want %s", path, addr, got, w.expand(want))
			}
			return nil
		}
		return fmt.Errorf("no object with address %q in stdout:\n%s", addr, tail(w.stdout, 20))
	})
	sc.Step(`^a library folder "([^"]*)" holding only the "([^"]*)" CPU library$`, func(rel, variant string) error {
		dst := filepath.Join(w.dir, rel)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		files := []string{"libggml-base.so.0"}
		if variant != "" {
			files = append(files, "libggml-cpu-"+variant+".so")
		}
		for _, f := range files {
			if err := copyLibrary(filepath.Join(binaryLibraryDir(), f), filepath.Join(dst, f)); err != nil {
				return err
			}
		}
		return nil
	})
}

func copyLibrary(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("%w (build it with RBEE_CPU_VARIANTS naming it: scripts/ggml-libs.sh)", err)
	}
	return os.WriteFile(dst, b, 0o755)
}

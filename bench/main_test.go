package bench

import (
	"fmt"
	"os"
	"testing"

	"github.com/rbee-dev/rbee/engine/cpu"
)

// TestMain runs the benchmarks with malloc asking for transparent huge
// pages, as `rbee worker` does (cpu.HugePagesTunable): the in-process
// baselines (the bare llama.cpp loop) must have the memory the worker has,
// or a ratio would measure page sizes. The workers and peers the benchmarks
// start inherit it.
func TestMain(m *testing.M) {
	if err := cpu.ExecWithHugePages(); err != nil {
		fmt.Fprintln(os.Stderr, "bench: could not run again with huge pages:", err)
	}
	os.Exit(m.Run())
}

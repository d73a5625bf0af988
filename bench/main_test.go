package bench

import (
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/rbee-dev/rbee/engine/cpu"
)

// TestMain runs the benchmarks with malloc asking for transparent huge
// pages, as `rbee worker` does (cpu.HugePagesTunable): the in-process
// baselines (the bare llama.cpp loop) must have the memory the worker has,
// or a ratio would measure page sizes. The workers and peers the benchmarks
// start inherit it.
func TestMain(m *testing.M) {
	if env, changed := cpu.WithHugePages(os.Environ()); changed {
		exe, err := os.Executable()
		if err == nil {
			err = syscall.Exec(exe, os.Args, env)
		}
		fmt.Fprintln(os.Stderr, "bench: could not run again with huge pages:", err)
	}
	os.Exit(m.Run())
}

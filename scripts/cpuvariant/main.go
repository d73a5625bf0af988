// Command cpuvariant prints the ggml CPU library variant this machine runs
// best ("icelake", "haswell", …), for scripts/ggml-libs.sh to build. It prints
// nothing on a CPU no x86-64 variant fits (another architecture).
package main

import (
	"fmt"
	"os"

	"github.com/rbee-dev/rbee/engine/cpu"
)

func main() {
	have, err := cpu.HostFeatures()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	names := make([]string, 0, len(cpu.Variants))
	for _, v := range cpu.Variants {
		names = append(names, v.Name)
	}
	if v, ok := cpu.Best(names, have); ok && cpu.HostIsX86() {
		fmt.Println(v.Name)
	}
}

package cpu

import (
	"os"
	"strings"
	"syscall"
)

// HugePagesTunable makes glibc's malloc ask the kernel for transparent huge
// pages (madvise(MADV_HUGEPAGE)) on the large blocks it maps. llama.cpp's
// CPU buffers (repacked weights, KV cache, compute buffer) are such blocks,
// and decoding reads the weights once per token: with 4 KiB pages that read
// misses the TLB every few KiB, which costs most in a virtual machine, where
// each miss walks two page tables. Kernels set to transparent_hugepage=madvise
// (the common default) give huge pages only to memory that asks.
const HugePagesTunable = "glibc.malloc.hugetlb=1"

const tunablesVar = "GLIBC_TUNABLES"

// WithHugePages returns env with HugePagesTunable added to GLIBC_TUNABLES.
// It reports false, and returns env as it is, when GLIBC_TUNABLES already
// sets glibc.malloc.hugetlb (to any value: glibc.malloc.hugetlb=0 opts out).
// glibc reads tunables only when a process starts, so a process that wants
// them runs itself again with the returned environment.
func WithHugePages(env []string) ([]string, bool) {
	out := make([]string, 0, len(env)+1)
	found := false
	for _, kv := range env {
		name, val, _ := strings.Cut(kv, "=")
		if name != tunablesVar {
			out = append(out, kv)
			continue
		}
		for _, t := range strings.Split(val, ":") {
			if strings.HasPrefix(t, "glibc.malloc.hugetlb=") {
				return env, false
			}
		}
		found = true
		if val == "" {
			out = append(out, tunablesVar+"="+HugePagesTunable)
		} else {
			out = append(out, tunablesVar+"="+val+":"+HugePagesTunable)
		}
	}
	if !found {
		out = append(out, tunablesVar+"="+HugePagesTunable)
	}
	return out, true
}

// ExecWithHugePages runs the calling program again, same pid and
// arguments, with the environment WithHugePages returns. It returns nil at
// once when GLIBC_TUNABLES already sets glibc.malloc.hugetlb, and the error
// when the program cannot be run again; otherwise it does not return.
func ExecWithHugePages() error {
	env, changed := WithHugePages(os.Environ())
	if !changed {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	return syscall.Exec(exe, os.Args, env)
}

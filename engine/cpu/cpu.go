// Package cpu knows which CPU features the rbee binary was compiled for and
// which ones a host offers, so that a worker refuses to start (and a hive can
// report why) on a CPU that would crash with an illegal instruction, and how
// a CPU worker's process leaves llama.cpp its cores (GoProcs) and its memory
// on huge pages (WithHugePages). It needs no cgo.
package cpu

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
)

// BuildLevel is the -march level llama.cpp's kernels were compiled for. It is
// set at link time by the Justfile:
//
//	-X github.com/rbee-dev/rbee/engine/cpu.BuildLevel=x86-64-v3
//
// Empty or "native" means unknown: no check is possible.
var BuildLevel string

// Feature lists per x86-64 micro-architecture level, as /proc/cpuinfo spells
// the flags. Each level includes the ones below it.
var (
	levelV2 = []string{"cx16", "lahf_lm", "popcnt", "sse3", "sse4_1", "sse4_2", "ssse3"}
	levelV3 = []string{"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
	levelV4 = []string{"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}
)

// procFlagAliases maps a feature name to the spellings /proc/cpuinfo may use.
var procFlagAliases = map[string][]string{
	"sse3": {"pni", "sse3"},
	"abm":  {"abm", "lzcnt"},
}

// Required returns the CPU features a binary built for level needs, or nil
// when the level is unknown ("", "native", or a non-x86 level).
func Required(level string) []string {
	var req []string
	switch strings.ToLower(strings.TrimSpace(level)) {
	case "x86-64-v4":
		req = append(req, levelV4...)
		fallthrough
	case "x86-64-v3":
		req = append(req, levelV3...)
		fallthrough
	case "x86-64-v2":
		req = append(req, levelV2...)
	default:
		return nil
	}
	slices.Sort(req)
	return req
}

// HostFeatures returns the CPU flags of this machine from /proc/cpuinfo (the
// first processor's "flags" line). It returns nil where that file does not
// exist (macOS, Windows).
func HostFeatures() ([]string, error) {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading CPU flags: %w", err)
	}
	defer f.Close()
	return parseFlags(f)
}

func parseFlags(f *os.File) ([]string, error) {
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		if k := strings.TrimSpace(key); k == "flags" || k == "Features" {
			flags := strings.Fields(val)
			slices.Sort(flags)
			return flags, nil
		}
	}
	return nil, sc.Err()
}

// Missing returns the features of required that have lacks.
func Missing(required, have []string) []string {
	set := make(map[string]bool, len(have))
	for _, h := range have {
		set[h] = true
	}
	var missing []string
	for _, r := range required {
		found := false
		for _, alias := range aliases(r) {
			if set[alias] {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, r)
		}
	}
	return missing
}

func aliases(feature string) []string {
	if a, ok := procFlagAliases[feature]; ok {
		return a
	}
	return []string{feature}
}

// MissingOnHost lists the features BuildLevel needs that this host lacks
// (nil when the level is unknown or nothing is missing).
func MissingOnHost() ([]string, error) {
	req := Required(BuildLevel)
	if req == nil || runtime.GOARCH != "amd64" {
		return nil, nil
	}
	have, err := HostFeatures()
	if err != nil || have == nil {
		return nil, err
	}
	return Missing(req, have), nil
}

// Check reports, as an error naming every missing feature, whether this host
// can run code built for BuildLevel. An unknown level or a host without
// /proc/cpuinfo passes.
func Check() error {
	missing, err := MissingOnHost()
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("this CPU lacks %s, which this rbee binary (built for %s) needs: rebuild with RBEE_MARCH set to a lower level (e.g. RBEE_MARCH=x86-64-v2 just build) or run on a newer CPU",
			strings.Join(missing, ", "), BuildLevel)
	}
	return nil
}

// PhysicalCores counts distinct (physical id, core id) pairs in
// /proc/cpuinfo, falling back to the number of logical CPUs.
func PhysicalCores() int {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.NumCPU()
	}
	defer f.Close()
	cores := map[string]bool{}
	phys := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "physical id":
			phys = strings.TrimSpace(val)
		case "core id":
			cores[phys+"/"+strings.TrimSpace(val)] = true
		}
	}
	if n := len(cores); n > 0 && n <= runtime.NumCPU() {
		return n
	}
	return runtime.NumCPU()
}

// Threads is the number of llama.cpp threads a worker asked for n computes
// with: n, or the physical cores when n is 0 or less.
func Threads(n int) int {
	if n > 0 {
		return n
	}
	return PhysicalCores()
}

// GoProcs is how many threads a CPU worker lets run Go code at once (its
// GOMAXPROCS) when llama.cpp computes with threads of the cpus it may use:
// the CPUs those threads leave free, at least one. llama.cpp's threads wait
// for each other after every operation of a step, so a Go thread that takes
// one of their cores stalls them all; and the Go scheduler keeps idle
// threads spinning for work on every core it may use. The worker's Go code
// (HTTP, JSON, the scheduler between steps) needs a fraction of one core.
func GoProcs(cpus, threads int) int { return max(1, cpus-threads) }

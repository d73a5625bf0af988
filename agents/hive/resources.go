package hive

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/agents/hive/modelstore"
	"github.com/rbee-dev/rbee/engine/cpu"
)

// interestingCPUFlags are the /proc/cpuinfo flags that matter for llama.cpp
// kernels; the state reports only these.
var interestingCPUFlags = []string{
	"sse3", "pni", "ssse3", "sse4_1", "sse4_2", "popcnt", "avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "movbe",
	"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl", "avx512_vnni", "avx512_bf16", "avx_vnni",
	"amx_tile", "amx_int8", "amx_bf16", "neon", "asimd", "asimddp", "sve", "i8mm",
}

// Probe reads what the node has: RAM, the data dir's free disk, CPU
// features, GPUs and the backends they allow.
type Probe struct {
	DataDir string
	// GPUs lists accelerators; nil uses nvidia-smi / /proc on Linux and one
	// Metal device on macOS.
	GPUs func(ctx context.Context) []hiveapi.GPU
}

// workerCPUVariant is the ggml CPU library this node's workers load. The
// hive runs the binary its workers run, with the same environment, so they
// load from the same library folder.
func workerCPUVariant() string { return cpu.HostVariant(cpu.LibraryDir()) }

// Resources returns the node's resources now.
func (p Probe) Resources(ctx context.Context) hiveapi.Resources {
	r := hiveapi.Resources{CPUCount: runtime.NumCPU(), CPUFeatures: []string{}, GPUs: []hiveapi.GPU{}}
	r.RAMTotal, r.RAMAvailable = memInfo()
	if free, err := modelstore.DiskFree(p.DataDir); err == nil {
		r.DiskFree = free
	}
	if have, err := cpu.HostFeatures(); err == nil {
		for _, f := range have {
			if slices.Contains(interestingCPUFlags, f) {
				r.CPUFeatures = append(r.CPUFeatures, f)
			}
		}
		slices.Sort(r.CPUFeatures)
		r.CPUFeatures = slices.Compact(r.CPUFeatures)
	}
	r.CPUVariant = workerCPUVariant()
	r.CUDALibrary = cudaLibrary(cpu.LibraryDir())
	gpus := p.GPUs
	if gpus == nil {
		gpus = detectGPUs
	}
	if g := gpus(ctx); g != nil {
		r.GPUs = g
	}
	r.Backends = backends(r.GPUs, r.CUDALibrary)
	r.MemoryBandwidth = memoryBandwidth()
	return r
}

// bandwidthOnce measures the memory read bandwidth the first time it is
// asked for; the figure does not change while the hive runs.
var bandwidthOnce = sync.OnceValue(func() int64 {
	bw := MeasureBandwidth(bandwidthBuffer, runtime.NumCPU())
	slog.Info("memory read bandwidth measured", "bytes_per_second", bw, "gb_per_second", fmt.Sprintf("%.1f", float64(bw)/1e9))
	return bw
})

func memoryBandwidth() int64 { return bandwidthOnce() }

// bandwidthBuffer is large enough to leave every CPU cache behind.
const bandwidthBuffer = 256 << 20

// MeasureBandwidth reads a buffer of size bytes with threads goroutines,
// as a decode step reads the weights, and returns the best of three
// passes in bytes per second.
func MeasureBandwidth(size, threads int) int64 {
	threads = max(1, threads)
	buf := make([]uint64, size/8)
	for i := range buf {
		buf[i] = uint64(i) // touch every page, so the passes read memory
	}
	var best float64
	var sink atomic.Uint64
	for range 3 {
		start := time.Now()
		var wg sync.WaitGroup
		chunk := (len(buf) + threads - 1) / threads
		for t := range threads {
			part := buf[min(len(buf), t*chunk):min(len(buf), (t+1)*chunk)]
			wg.Add(1)
			go func() {
				defer wg.Done()
				var a, b, c, d uint64
				for i := 0; i+3 < len(part); i += 4 {
					a += part[i]
					b += part[i+1]
					c += part[i+2]
					d += part[i+3]
				}
				sink.Add(a + b + c + d)
			}()
		}
		wg.Wait()
		if s := time.Since(start).Seconds(); s > 0 {
			best = max(best, float64(len(buf)*8)/s)
		}
	}
	return int64(best)
}

// cudaLibraryName is ggml's CUDA backend library, which ggml loads from the
// library folder (beside the CPU ones) when a worker starts.
const cudaLibraryName = "libggml-cuda.so"

// cudaLibrary is the path of the CUDA library in the library folder dir, or
// "" when it has none.
func cudaLibrary(dir string) string {
	if dir == "" {
		return ""
	}
	p := filepath.Join(dir, cudaLibraryName)
	if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	return p
}

// backends are the backends a worker can use here: cpu always, cuda when an
// NVIDIA GPU is listed and the CUDA library is in the library folder (both:
// a worker never runs a cuda pool on the CPU). This binary runs no Metal.
func backends(gpus []hiveapi.GPU, cudaLib string) []string {
	out := []string{hiveapi.BackendCPU}
	for _, g := range gpus {
		if g.Backend == hiveapi.BackendCUDA && cudaLib != "" && !slices.Contains(out, g.Backend) {
			out = append(out, g.Backend)
		}
	}
	return out
}

// memInfo returns MemTotal and MemAvailable from /proc/meminfo, in bytes.
func memInfo() (total, available int64) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		n, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "MemTotal:":
			total = n * 1024
		case "MemAvailable:":
			available = n * 1024
		}
	}
	return total, available
}

// detectGPUs finds NVIDIA GPUs through nvidia-smi (names and memory) or,
// failing that, the driver's /proc entries; on macOS it reports one Metal device.
func detectGPUs(ctx context.Context) []hiveapi.GPU {
	if runtime.GOOS == "darwin" {
		return []hiveapi.GPU{{Index: 0, Name: "Apple GPU", Backend: hiveapi.BackendMetal}}
	}
	if path, err := exec.LookPath("nvidia-smi"); err == nil {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, path, "--query-gpu=index,name,memory.total,memory.free", "--format=csv,noheader,nounits").Output()
		if err == nil {
			return parseNvidiaSMI(string(out))
		}
	}
	dirs, _ := filepath.Glob("/proc/driver/nvidia/gpus/*")
	var gpus []hiveapi.GPU
	for i := range dirs {
		gpus = append(gpus, hiveapi.GPU{Index: i, Name: "NVIDIA GPU", Backend: hiveapi.BackendCUDA})
	}
	return gpus
}

// parseNvidiaSMI parses "index, name, total MiB, free MiB" lines.
func parseNvidiaSMI(out string) []hiveapi.GPU {
	var gpus []hiveapi.GPU
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, ",")
		if len(f) != 4 {
			continue
		}
		idx, err := strconv.Atoi(strings.TrimSpace(f[0]))
		if err != nil {
			continue
		}
		total, _ := strconv.ParseInt(strings.TrimSpace(f[2]), 10, 64)
		free, _ := strconv.ParseInt(strings.TrimSpace(f[3]), 10, 64)
		gpus = append(gpus, hiveapi.GPU{Index: idx, Name: strings.TrimSpace(f[1]), Backend: hiveapi.BackendCUDA,
			VRAMTotal: total << 20, VRAMFree: free << 20})
	}
	return gpus
}

package cpu

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// LibraryFolder is where ggml's backend libraries sit, relative to the rbee
// binary: <dir of rbee>/lib/ollama. ggml loads only from a folder whose path
// contains lib/ollama.
const LibraryFolder = "lib/ollama"

// LibraryPathEnv names the folder ggml loads backend libraries from (ggml
// reads only a folder whose absolute path contains lib/ollama).
const LibraryPathEnv = "OLLAMA_LIBRARY_PATH"

// LibraryDir is the folder a worker loads ggml libraries from: the first
// entry of $OLLAMA_LIBRARY_PATH when it is set, else LibraryFolder beside the
// running executable ("" when neither can be found).
func LibraryDir() string {
	if v, ok := os.LookupEnv(LibraryPathEnv); ok {
		if dirs := filepath.SplitList(v); len(dirs) > 0 {
			return dirs[0]
		}
		return ""
	}
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	return filepath.Join(filepath.Dir(exe), LibraryFolder)
}

// Variant is one ggml CPU library (libggml-cpu-<Name>.so), compiled for a CPU
// generation.
type Variant struct {
	Name string
	// Needs are the /proc/cpuinfo flags the library's kernels use, grouped as
	// ggml scores them: each group adds its bit to the score, and a missing
	// flag makes the library unusable.
	Needs []featureGroup
}

type featureGroup struct {
	bit   uint
	flags []string
}

// ggml's x86 feature groups and their score bits (ggml-cpu/arch/x86/cpu-feats.cpp
// of the pinned module version).
var (
	fFMA        = featureGroup{0, []string{"fma"}}
	fF16C       = featureGroup{1, []string{"f16c"}}
	fSSE42      = featureGroup{2, []string{"sse4_2"}}
	fBMI2       = featureGroup{3, []string{"bmi2"}}
	fAVX        = featureGroup{4, []string{"avx"}}
	fAVX2       = featureGroup{5, []string{"avx2"}}
	fAVXVNNI    = featureGroup{6, []string{"avx_vnni"}}
	fAVX512     = featureGroup{7, []string{"avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"}}
	fAVX512VBMI = featureGroup{8, []string{"avx512vbmi"}}
	fAVX512VNNI = featureGroup{10, []string{"avx512_vnni"}}
)

// Variants are the x86-64 CPU libraries ggml's GGML_CPU_ALL_VARIANTS builds,
// oldest first.
var Variants = []Variant{
	{Name: "x64"},
	{Name: "sse42", Needs: []featureGroup{fSSE42}},
	{Name: "sandybridge", Needs: []featureGroup{fSSE42, fAVX}},
	{Name: "haswell", Needs: []featureGroup{fSSE42, fAVX, fF16C, fAVX2, fBMI2, fFMA}},
	{Name: "skylakex", Needs: []featureGroup{fSSE42, fAVX, fF16C, fAVX2, fBMI2, fFMA, fAVX512}},
	{Name: "icelake", Needs: []featureGroup{fSSE42, fAVX, fF16C, fAVX2, fBMI2, fFMA, fAVX512, fAVX512VBMI, fAVX512VNNI}},
	{Name: "alderlake", Needs: []featureGroup{fSSE42, fAVX, fF16C, fAVX2, fBMI2, fFMA, fAVXVNNI}},
}

// Score is what ggml's loader ranks the variant by on a host with the given
// /proc/cpuinfo flags: 0 when the host lacks a flag the variant needs, else
// 1 plus one bit per feature group. The highest score is loaded.
func (v Variant) Score(have []string) int {
	score := 1
	for _, g := range v.Needs {
		if len(Missing(g.flags, have)) > 0 {
			return 0
		}
		score += 1 << g.bit
	}
	return score
}

// LibraryName is the file name of the variant's library.
func (v Variant) LibraryName() string { return "libggml-cpu-" + v.Name + ".so" }

// VariantByName returns the variant called name.
func VariantByName(name string) (Variant, bool) {
	i := slices.IndexFunc(Variants, func(v Variant) bool { return v.Name == name })
	if i < 0 {
		return Variant{}, false
	}
	return Variants[i], true
}

// VariantOfLibrary returns the variant name of a CPU library path
// (".../libggml-cpu-icelake.so" is "icelake"); false for any other file.
func VariantOfLibrary(path string) (string, bool) {
	name, ok := strings.CutPrefix(filepath.Base(path), "libggml-cpu-")
	if !ok {
		return "", false
	}
	name, ok = strings.CutSuffix(name, ".so")
	if !ok || name == "" {
		return "", false
	}
	return name, true
}

// BuiltinVariant names the CPU kernels compiled into the binary, used when no
// library of the library folder runs here: "builtin-<BuildLevel>".
func BuiltinVariant() string {
	if BuildLevel == "" {
		return "builtin"
	}
	return "builtin-" + BuildLevel
}

// Best returns the variant among names that ggml would load on a host with
// the given flags (the highest score), or false when none runs there.
func Best(names, have []string) (Variant, bool) {
	var best Variant
	bestScore := 0
	for _, n := range names {
		v, ok := VariantByName(n)
		if !ok {
			continue
		}
		if s := v.Score(have); s > bestScore {
			best, bestScore = v, s
		}
	}
	return best, bestScore > 0
}

// LibraryVariants lists the variants whose libraries are in dir.
func LibraryVariants(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		if n, ok := VariantOfLibrary(e.Name()); ok && e.Type().IsRegular() {
			names = append(names, n)
		}
	}
	return names
}

// HostVariant is the CPU variant a worker on this host picks from the
// libraries in dir, or BuiltinVariant when none of them runs here (or the
// host's flags cannot be read).
func HostVariant(dir string) string {
	have, err := HostFeatures()
	if err != nil || have == nil || !HostIsX86() {
		return BuiltinVariant()
	}
	if v, ok := Best(LibraryVariants(dir), have); ok {
		return v.Name
	}
	return BuiltinVariant()
}

// HostIsX86 reports whether this binary runs on x86-64, the only
// architecture the Variants describe.
func HostIsX86() bool { return runtime.GOARCH == "amd64" }

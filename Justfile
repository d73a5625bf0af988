# rbee tasks. `just` comes from the npm package rust-just: npm install -g rust-just

set shell := ["bash", "-euo", "pipefail", "-c"]

# CPU level llama.cpp's kernels are compiled for. Generic code is several times
# slower; x86-64-v3 (AVX2, FMA, F16C) runs on any x86 server from 2015 on.
# Use RBEE_MARCH=native for the fastest build on this machine only.
march := env_var_or_default("RBEE_MARCH", "x86-64-v3")
include_dir := env_var("HOME") + "/.cache/rbee/include"

export CGO_ENABLED := "1"
export CGO_CPPFLAGS := "-I" + include_dir
# ggml turns its AMX kernels on when the compiler targets AMX (native on an
# Intel Sapphire Rapids or later), but the cgo build does not compile their
# sources, so the link would fail: every level but the generic x86-64-vN ones
# (which have no AMX) leaves AMX out.
march_flags := if march =~ '^x86-64' { "-march=" + march } else { "-march=" + march + " -mno-amx-tile -mno-amx-int8 -mno-amx-bf16" }
export CGO_CFLAGS := "-O3 " + march_flags
export CGO_CXXFLAGS := "-O3 " + march_flags

# -s -w drop the symbol table and DWARF (stack traces keep their names): the
# binary apply copies to every node shrinks from 36 to 27 MB.
ldflags := "-s -w -X main.version=" + `git describe --tags --always --dirty 2>/dev/null || echo dev` + " -X github.com/rbee-dev/rbee/engine/cpu.BuildLevel=" + march

# List the recipes.
default:
    @just --list

# Install build dependencies: Debian headers for llama.cpp, openssh-server, the miniaudio header.
deps:
    scripts/deps.sh "{{include_dir}}"

# Build bin/rbee (first build compiles llama.cpp: about 5 minutes on 2 cores)
# and bin/lib/ollama/, the ggml CPU libraries a worker picks from at start
# (the best one its CPU runs). RBEE_CPU_VARIANTS=all builds every CPU
# generation for a fleet of mixed CPUs; the default builds this machine's
# variant and haswell (scripts/ggml-libs.sh).
build: deps
    scripts/ggml-libs.sh bin/lib/ollama
    go build -ldflags "{{ldflags}}" -o bin/rbee ./cmd/rbee

# Add bin/lib/ollama/libggml-cuda.so, ggml's CUDA backend, for pools with
# backend = "cuda" (scripts/ggml-cuda.sh). Needs nvcc (the CUDA toolkit);
# CUDA_ARCHITECTURES="90" (H100) or "80;90" limits what it compiles for
# (default: this machine's GPUs). Without nvcc it stops with a message and the
# CPU build stays as it is.
build-cuda: build
    scripts/ggml-cuda.sh bin/lib/ollama

# Run unit tests, the Gherkin features against bin/rbee, then each fuzz target for a bounded time.
test: build
    go vet ./...
    RBEE_BIN="$PWD/bin/rbee" go test -count=1 -timeout 40m ./...
    RBEE_FUZZTIME="${RBEE_FUZZTIME:-15s}" scripts/fuzz.sh

# Run each fuzz target for RBEE_FUZZTIME (default 20s).
fuzz: deps
    scripts/fuzz.sh

# A local cluster from rbee.hcl.example on a generated model, then an inference.
demo: build
    scripts/demo.sh

# Benchmarks: ratios against baselines measured in the same run.
bench: build
    RBEE_BIN="$PWD/bin/rbee" go test -run '^$' -bench . -benchtime 1x -timeout 60m ./bench/...

# Format check and vet.
lint:
    test -z "$(gofmt -l .)" || { gofmt -l .; exit 1; }
    go vet ./...

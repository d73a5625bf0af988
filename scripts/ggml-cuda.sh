#!/usr/bin/env bash
# Builds ggml's CUDA backend, libggml-cuda.so, from the CMake project of the
# pinned github.com/ollama/ollama module (the ggml-cuda target) and installs
# it into the library folder (default bin/lib/ollama) beside the CPU ones,
# where a worker with backend = "cuda" loads it and where apply copies it
# from. It needs CUDA's nvcc; the CPU build (scripts/ggml-libs.sh) does not.
#
#   scripts/ggml-cuda.sh [OUT_DIR]
#
# Environment (all optional):
#   CUDA_ARCHITECTURES   the GPU architectures to compile for, as CMake takes
#                        them ("90" for an H100/H200, "80;86;89;90"); default
#                        native: the GPUs of this machine
#   RBEE_CUDA_RUNTIME    copy: also copy libcudart, libcublas and libcublasLt
#                        into the folder, for nodes without the CUDA runtime
#                        (hundreds of MB that apply then copies to every node)
#   RBEE_GGML_CUDA_BUILD the CMake build folder, kept between runs
#                        (default ~/.cache/rbee/ggml-cuda-build)
#   RBEE_BUILD_JOBS      parallel compile jobs (default: the number of CPUs)
#   NVCC                 the nvcc to use (default: nvcc on PATH, else
#                        /usr/local/cuda/bin/nvcc)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/ggml-common.sh
out=${1:-bin/lib/ollama}
build=${RBEE_GGML_CUDA_BUILD:-$HOME/.cache/rbee/ggml-cuda-build}
jobs=${RBEE_BUILD_JOBS:-$(nproc)}
archs=${CUDA_ARCHITECTURES:-native}

nvcc=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
if [ ! -x "$nvcc" ]; then
  echo "error: the CUDA build needs nvcc (the CUDA toolkit), which is not on this machine; install it (or set NVCC) and run just build-cuda again; the CPU build (just build) is unaffected" >&2
  exit 1
fi
need_build_tools

src=$(ollama_src)

# Configure once per source and architecture list; ninja redoes what changed.
stamp="$src|$archs|$nvcc"
if [ ! -f "$build/build.ninja" ] || [ "$(cat "$build/rbee-stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$build"
  mkdir -p "$build"
  cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CUDA_COMPILER="$nvcc" "-DCMAKE_CUDA_ARCHITECTURES=$archs" \
    -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON '-DCMAKE_INSTALL_RPATH=$ORIGIN' >"$build/configure.log" ||
    { cat "$build/configure.log" >&2; exit 1; }
  echo "$stamp" >"$build/rbee-stamp"
fi
echo "ggml CUDA library for architectures $archs (in $build; about 3 minutes per architecture on 16 cores)"
nice -n 10 ninja -C "$build" -j "$jobs" ggml-cuda | { grep -v '^\[' || true; }

mkdir -p "$out"
install_file "$build/lib/ollama/libggml-cuda.so" "$out/libggml-cuda.so"
# libggml-cuda.so links libggml-base.so.0; the CPU build puts the same one there.
[ -f "$out/libggml-base.so.0" ] || install_file "$build/lib/ollama/libggml-base.so.0" "$out/libggml-base.so.0"
if [ "${RBEE_CUDA_RUNTIME:-}" = copy ]; then
  libdir=$(dirname "$(dirname "$nvcc")")/lib64
  for lib in libcudart.so.12 libcublas.so.12 libcublasLt.so.12; do
    install_file "$libdir/$lib" "$out/$lib"
  done
fi
echo "installed $out/libggml-cuda.so"

#!/usr/bin/env bash
# Builds ggml's CPU backends as loadable libraries, one per CPU generation,
# from the CMake project of the pinned github.com/ollama/ollama module, and
# installs them into a library folder (default bin/lib/ollama) beside the rbee
# binary. At start a worker loads the best one its CPU runs; with none there
# (or none that runs) it uses the kernels compiled into the binary.
#
#   scripts/ggml-libs.sh [OUT_DIR]
#
# Environment (all optional):
#   RBEE_CPU_VARIANTS  auto (default): the variant this machine runs best plus
#                      haswell (any AVX2 CPU, and the bench's baseline);
#                      all: every variant (x64 sse42 sandybridge haswell
#                      skylakex icelake alderlake), for a fleet of mixed CPUs;
#                      or a list such as "haswell skylakex".
#   RBEE_GGML_BUILD    the CMake build folder, kept between runs so that a
#                      second build takes seconds (default ~/.cache/rbee/ggml-build)
#   RBEE_BUILD_JOBS    parallel compile jobs (default: the number of CPUs)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/ggml-common.sh
out=${1:-bin/lib/ollama}
build=${RBEE_GGML_BUILD:-$HOME/.cache/rbee/ggml-build}
jobs=${RBEE_BUILD_JOBS:-$(nproc)}
variants=${RBEE_CPU_VARIANTS:-auto}

if [ "$(uname -m)" != x86_64 ]; then
  echo "ggml CPU libraries: none for $(uname -m) (the binary's built-in kernels run there)"
  exit 0
fi
need_build_tools

case $variants in
  auto) variants="$(go run ./scripts/cpuvariant) haswell" ;;
  all) variants="x64 sse42 sandybridge haswell skylakex icelake alderlake" ;;
esac
variants=$(tr ', ' '\n\n' <<<"$variants" | sed '/^$/d' | sort -u | tr '\n' ' ')
targets=()
for v in $variants; do
  case $v in
    x64 | sse42 | sandybridge | haswell | skylakex | icelake | alderlake) targets+=("ggml-cpu-$v") ;;
    *)
      echo "error: unknown CPU variant \"$v\" in RBEE_CPU_VARIANTS; use auto, all, or some of: x64 sse42 sandybridge haswell skylakex icelake alderlake" >&2
      exit 1
      ;;
  esac
done

src=$(ollama_src)

# One build at a time in the shared folder (two ninja runs in it at once
# truncate its .ninja_log); the lock file lives beside it, as rm -rf below
# may remove the folder.
mkdir -p "$(dirname "$build")"
exec 9>"$build.lock"
flock 9

# Configure once per source and options; CMake and ninja redo only what
# changed. $ORIGIN makes each library find libggml-base beside it wherever the
# folder is copied. GGML_CPU_REPACK (on in llama.cpp's own build, off in
# Ollama's) lets the CPU backend copy Q4_0, Q4_K and IQ4_NL matrices at load
# into the interleaved layout its AVX2/AVX-512 kernels read: prompts about
# twice and batched decoding nearly three times as fast (README, design notes).
options=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CPU_REPACK=ON
  -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON '-DCMAKE_INSTALL_RPATH=$ORIGIN')
stamp="$src ${options[*]}"
if [ ! -f "$build/build.ninja" ] || [ "$(cat "$build/rbee-configure" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$build"
  mkdir -p "$build"
  cmake -S "$src" -B "$build" "${options[@]}" >"$build/configure.log" ||
    { cat "$build/configure.log" >&2; exit 1; }
  printf '%s\n' "$stamp" >"$build/rbee-configure"
fi
echo "ggml CPU libraries: ${variants% } (in $build)"
nice -n 10 ninja -C "$build" -j "$jobs" "${targets[@]}" | { grep -v '^\[' || true; }

# The folder holds exactly the libraries asked for, as plain files (no
# symlinks), so that apply copies and verifies each one.
mkdir -p "$out"
find "$out" -maxdepth 1 -name 'libggml-cpu-*.so' -type f | while read -r f; do
  v=${f##*/libggml-cpu-}
  [[ " $variants " == *" ${v%.so} "* ]] || rm -f "$f"
done
# A changed library is replaced by a rename, never rewritten in place under a
# running worker that maps it.
install_file "$build/lib/ollama/libggml-base.so.0" "$out/libggml-base.so.0"
for v in $variants; do
  install_file "$build/lib/ollama/libggml-cpu-$v.so" "$out/libggml-cpu-$v.so"
done

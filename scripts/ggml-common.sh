# Shared by scripts/ggml-libs.sh and scripts/ggml-cuda.sh (sourced, not run):
# the build tools, the ollama module's CMake source, and an install that
# leaves an unchanged file alone.

# need_build_tools exits with a hint when cmake or ninja is missing.
need_build_tools() {
  for tool in cmake ninja; do
    command -v "$tool" >/dev/null || {
      echo "error: $tool is missing; install it with: scripts/deps.sh (Debian: apt-get install cmake ninja-build)" >&2
      exit 1
    }
  done
}

# ollama_src prints the folder of the github.com/ollama/ollama module go.mod
# pins, downloading it when the module cache lacks it. The module cache is
# read-only, which CMake accepts for a source folder.
ollama_src() {
  local src
  src=$(go list -m -f '{{.Dir}}' github.com/ollama/ollama)
  if [ -z "$src" ] || [ ! -f "$src/CMakeLists.txt" ]; then
    go mod download github.com/ollama/ollama
    src=$(go list -m -f '{{.Dir}}' github.com/ollama/ollama)
  fi
  printf '%s\n' "$src"
}

# install_file copies $1 to $2 (through a temporary name) unless they are equal.
install_file() { cmp -s "$1" "$2" || { cp -L "$1" "$2.tmp" && mv -f "$2.tmp" "$2"; }; }

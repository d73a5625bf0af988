#!/usr/bin/env bash
# Builds Ollama from the github.com/ollama/ollama module version rbee pins in
# go.mod, with the same cgo flags as rbee, as a peer baseline for the
# benchmarks (bench/ollama_bench_test.go). It is built in a module of its own
# under the cache folder, so Ollama's dependencies never enter rbee's module
# graph; rbee itself does not use this binary.
#
#   scripts/ollama-peer.sh        prints the binary's path on its last line
#
# Environment: RBEE_OLLAMA_DIR, the build folder (default ~/.cache/rbee/ollama-peer).
# The cgo flags come from the environment (just bench sets rbee's).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
version=$(go list -m -f '{{.Version}}' github.com/ollama/ollama)
dir=${RBEE_OLLAMA_DIR:-$HOME/.cache/rbee/ollama-peer}/$version
bin=$dir/ollama
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$dir"
if [ ! -f "$dir/go.mod" ]; then
  (cd "$dir" && go mod init rbee.local/ollama-peer >/dev/null 2>&1 &&
    go get "github.com/ollama/ollama@$version" >&2) || {
    echo "error: could not fetch github.com/ollama/ollama@$version and its modules through the Go module proxy" >&2
    exit 1
  }
fi
echo "building Ollama $version as the benchmarks' peer (first time: about 5 minutes on 2 cores)" >&2
(cd "$dir" && go build -trimpath -o ollama.tmp github.com/ollama/ollama && mv ollama.tmp ollama)
echo "$bin"

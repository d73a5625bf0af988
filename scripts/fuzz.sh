#!/usr/bin/env bash
# Runs the Go fuzz targets that guard hostile input, each for a bounded time
# (RBEE_FUZZTIME, default 20s): the HCL loader, the worker's and the hive's
# request decoding, the gateway's, GGUF headers, grammars and the lock file.
# A failing input is saved under the package's testdata/fuzz and fails the run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
t=${RBEE_FUZZTIME:-20s}
targets=(
  "./config FuzzLoad"
  "./agents/worker FuzzInferenceBody"
  "./agents/worker FuzzCompletionBody"
  "./agents/worker FuzzChatBody"
  "./agents/worker FuzzEmbeddingsBody"
  "./agents/hive FuzzPutRequests"
  "./gateway FuzzInference"
  "./gguf FuzzRead"
  "./engine FuzzJSONSchemaGrammar"
  "./modellock FuzzParse"
  "./secret FuzzParseEnv"
)
for entry in "${targets[@]}"; do
  read -r pkg name <<<"$entry"
  [ -d "$pkg" ] || continue
  echo "fuzz $pkg $name for $t"
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$t" -fuzzminimizetime 5s -parallel 1 "$pkg" | tail -n 2
done

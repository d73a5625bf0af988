#!/usr/bin/env bash
# The GPU check of backend = "cuda", in one go, on a machine with an NVIDIA
# GPU: builds libggml-cuda.so into the library folder beside the rbee binary,
# starts a worker on CUDA device 0, checks that /v1/ready reports backend
# cuda with offloaded layers, and prints the worker's decode rate at 1 and 16
# streams. Without a GPU or nvcc it stops at once and says which is missing.
#
#   scripts/gpu-check.sh [MODEL.gguf]
#
# MODEL defaults to a tinyllama-shaped Q4_0 file made with rbee model synth.
# Environment: RBEE_BIN (default bin/rbee, built on any machine with
# just build), CUDA_ARCHITECTURES (default native), RBEE_GPU_PORT (default
# 18431), RBEE_GPU_TOKENS (tokens per stream, default 128).
#
# What it does not do yet: the bare-loop baseline on the same GPU (the
# bench package's in-process loops run on the CPU only), so it prints the
# worker's figures, not the worker ÷ bare-loop ratio.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=${RBEE_BIN:-bin/rbee}
port=${RBEE_GPU_PORT:-18431}
tokens=${RBEE_GPU_TOKENS:-128}

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU 0'; then
  echo "gpu-check: no NVIDIA GPU here (nvidia-smi lists none); run it on a machine with one" >&2
  exit 1
fi
if ! command -v nvcc >/dev/null && [ ! -x "${NVCC:-/usr/local/cuda/bin/nvcc}" ]; then
  echo "gpu-check: nvcc (the CUDA toolkit) is missing; install it, or set NVCC, to build libggml-cuda.so" >&2
  exit 1
fi
if [ ! -x "$bin" ]; then
  echo "gpu-check: no rbee binary at $bin; build it with just build (any machine) or set RBEE_BIN" >&2
  exit 1
fi
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "gpu-check: $tool is missing" >&2; exit 1; }
done

libdir="$(cd "$(dirname "$bin")" && pwd)/lib/ollama"
nvidia-smi --query-gpu=index,name,memory.total,memory.free --format=csv,noheader
scripts/ggml-cuda.sh "$libdir"

work=$(mktemp -d)
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
model=${1:-}
if [ -z "$model" ]; then
  model="$work/tl.gguf"
  "$bin" model synth --preset tinyllama-q4_0 --out "$model" >/dev/null
fi

OLLAMA_LIBRARY_PATH="$libdir" "$bin" worker --model "$model" --port "$port" \
  --backend cuda --device 0 --slots 16 --ctx-size 1024 >"$work/worker.log" 2>&1 &
pid=$!
for _ in $(seq 600); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "gpu-check: the worker exited; its log:" >&2
    tail -30 "$work/worker.log" >&2
    exit 1
  fi
  curl -fsS "http://127.0.0.1:$port/v1/ready" 2>/dev/null | grep -q '"ready":true' && break
  sleep 0.5
done

python3 - "$port" "$tokens" "$work/worker.log" <<'PY'
import json, sys, threading, time, urllib.request

port, tokens, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
base = f"http://127.0.0.1:{port}"
ready = json.load(urllib.request.urlopen(base + "/v1/ready"))
print(f"ready: backend {ready.get('backend')}, device {ready.get('device')}, "
      f"offloaded_layers {ready.get('offloaded_layers')}, cpu_variant {ready.get('cpu_variant')}")
if ready.get("backend") != "cuda" or not ready.get("offloaded_layers"):
    print("gpu-check: FAIL: the worker does not compute on the GPU; its log:", file=sys.stderr)
    print(open(log).read()[-3000:], file=sys.stderr)
    sys.exit(1)

def one(out, i):
    body = json.dumps({"prompt": "Once upon a time", "max_tokens": tokens, "seed": i, "ignore_eos": True}).encode()
    req = urllib.request.Request(base + "/v1/inference", body, {"Content-Type": "application/json"})
    end = {}
    with urllib.request.urlopen(req) as r:
        for line in r:
            line = line.decode().strip()
            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                ev = json.loads(line[5:])
                if ev.get("type") == "end":
                    end = ev
    out[i] = end

for streams in (1, 16):
    one({}, 0)  # warm up
    out = {}
    t0 = time.monotonic()
    th = [threading.Thread(target=one, args=(out, i)) for i in range(streams)]
    [t.start() for t in th]
    [t.join() for t in th]
    wall = time.monotonic() - t0
    toks = sum(e.get("tokens_out", 0) for e in out.values())
    per = [e["tokens_out"] / (e["decode_time_ms"] / 1000) for e in out.values() if e.get("decode_time_ms")]
    print(f"{streams:2d} streams: {toks} tokens in {wall:.2f} s = {toks / wall:.1f} tok/s over all streams; "
          f"decode per stream {min(per):.1f}..{max(per):.1f} tok/s")
print("gpu-check: the worker ÷ bare-loop ratio is not measured: the bench's bare loop runs on the CPU only")
PY

#!/usr/bin/env bash
# Installs what building and testing rbee needs on Debian/Ubuntu, idempotently:
# as root (no sudo needed), as a user with sudo, or with nothing left to install.
set -euo pipefail
include_dir=${1:-$HOME/.cache/rbee/include}

# nlohmann-json3-dev, libstb-dev: headers llama.cpp's sources include.
# openssh-server: the feature tests' two SSH hosts. prometheus: promtool, which
# checks every /metrics rbee serves. etcd-server: the etcd state backend's tests.
# cmake, ninja-build: the ggml CPU libraries (scripts/ggml-libs.sh).
need=()
for pkg in nlohmann-json3-dev libstb-dev openssh-server prometheus etcd-server cmake ninja-build; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || {
      echo "error: installing ${need[*]} needs root; run as root or install sudo" >&2
      exit 1
    }
    as_root=(sudo)
  fi
  echo "installing ${need[*]}"
  "${as_root[@]}" apt-get update -qq
  # env passes DEBIAN_FRONTEND through sudo, which would otherwise drop it.
  # --no-install-recommends keeps prometheus and etcd to their binaries.
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The packages start their daemons; the tests start their own.
  for svc in prometheus etcd; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
      "${as_root[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
    fi
  done
fi

# llama.cpp keeps miniaudio.h in a vendor/ folder that Go module zips drop; the
# same header ships at the root of the Go module github.com/gen2brain/malgo.
malgo_version=v0.11.24
if [ ! -f "$include_dir/miniaudio/miniaudio.h" ]; then
  malgo=$(go mod download -json "github.com/gen2brain/malgo@$malgo_version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  mkdir -p "$include_dir/miniaudio"
  cp "$malgo/miniaudio.h" "$include_dir/miniaudio/miniaudio.h"
fi

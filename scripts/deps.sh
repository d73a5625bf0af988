#!/usr/bin/env bash
# Installs what building and testing rbee needs on Debian/Ubuntu, idempotently.
set -euo pipefail
include_dir=${1:-$HOME/.cache/rbee/include}

need=()
for pkg in nlohmann-json3-dev libstb-dev openssh-server; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${need[*]}"
  $sudo apt-get update -qq
  $sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

# llama.cpp keeps miniaudio.h in a vendor/ folder that Go module zips drop; the
# llama.cpp keeps miniaudio.h in a vendor/ folder that Go module zips drop; the
# same header ships at the root of the Go module github.com/gen2brain/malgo.
malgo_version=v0.11.24
if [ ! -f "$include_dir/miniaudio/miniaudio.h" ]; then
  malgo=$(go mod download -json "github.com/gen2brain/malgo@$malgo_version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  mkdir -p "$include_dir/miniaudio"
  cp "$malgo/miniaudio.h" "$include_dir/miniaudio/miniaudio.h"
fi

#!/usr/bin/env bash
# The rbee demo: a local fleet from rbee.hcl.example (one hive on this
# machine, a generated model, one worker), then a streamed inference.
# Run it with `just demo` (which builds bin/rbee first) from a fresh clone; run
# it again at will: the second apply finds nothing to change.
#
# Environment (all optional):
#   RBEE_BIN             the rbee binary (default: bin/rbee)
#   RBEE_DEMO_DIR        the demo folder (default: demo, git-ignored)
#   RBEE_DEMO_HIVE_PORT  the hive's port when 9200 is taken
#   RBEE_DEMO_PROMPT     the prompt (default: "Once upon a time")
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
rbee=${RBEE_BIN:-bin/rbee}
dir=${RBEE_DEMO_DIR:-demo}
prompt=${RBEE_DEMO_PROMPT:-Once upon a time}

if [ ! -x "$rbee" ]; then
  echo "error: $rbee is missing; build it first with: just build" >&2
  exit 1
fi

if [ -t 1 ]; then bold=$'\e[1m' dim=$'\e[2m' reset=$'\e[0m'; else bold="" dim="" reset=""; fi
step() {
  local shown
  printf -v shown '%q ' "$@"
  printf '\n%s==> %s%s\n' "$bold" "${shown% }" "$reset"
  "$@"
}

mkdir -p "$dir"
cfg="$dir/rbee.hcl"
if [ -f "$cfg" ]; then
  echo "${dim}Using the existing $cfg (delete it to start again from rbee.hcl.example).${reset}"
else
  cp rbee.hcl.example "$cfg"
  echo "${dim}Copied rbee.hcl.example to $cfg.${reset}"
fi
if [ -n "${RBEE_DEMO_HIVE_PORT:-}" ]; then
  sed -i.bak -E "s/^([[:space:]]*hive_port[[:space:]]*=[[:space:]]*)[0-9]+/\1${RBEE_DEMO_HIVE_PORT}/" "$cfg"
  rm -f "$cfg.bak"
fi

# The hive listens on hive_port (9200 unless changed). If another program holds
# that port, say so now: apply would only find out after starting the hive.
port=$(sed -nE 's/^[[:space:]]*hive_port[[:space:]]*=[[:space:]]*([0-9]+).*/\1/p' "$cfg" | head -n 1)
port=${port:-9200}
pidfile="$dir/.rbee/nodes/local/hive.pid"
ours=false
if [ -f "$pidfile" ]; then
  pid=$(cat "$pidfile")
  case $(ps -p "$pid" -o args= 2>/dev/null) in *" hive "*":$port "*) ours=true ;; esac
fi
if [ "$ours" = false ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  cat >&2 <<EOF
error: port $port on 127.0.0.1 is already in use by another program, and the
demo's hive needs it (hive_port in $cfg).
Stop that program, or run the demo with its hive on another port, e.g.:
  RBEE_DEMO_HIVE_PORT=9300 just demo
EOF
  exit 1
fi

step "$rbee" validate --config "$cfg"
step "$rbee" plan --config "$cfg"
step "$rbee" apply -auto-approve --config "$cfg"
step "$rbee" infer --config "$cfg" --model tiny --prompt "$prompt" --max-tokens 32
step "$rbee" state list --config "$cfg"

cat <<EOF

${bold}The demo fleet is running${reset} (state in $dir/.rbee). Try:
  $rbee infer --config $cfg --model tiny --prompt "Hello" --json
  $rbee plan --config $cfg -detailed-exitcode   # 0: nothing drifted
Stop it and remove what it installed with:
  $rbee destroy -auto-approve --config $cfg
EOF

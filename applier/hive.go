package applier

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/applier/transport"
	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/digest"
	"github.com/rbee-dev/rbee/planner"
)

// Node is what apply needs to know to install, reach and remove a hive.
type Node struct {
	Name  string
	Local bool                // connection = "local": no SSH, the hive runs on this machine
	SSH   transport.SSHConfig // for remote nodes
	// InstallDir holds bin/rbee, hive.token, hive.pid, hive.log and data/.
	InstallDir string
	HivePort   int
	Env        map[string]string // environment of the hive and its workers, written to hive.env
	envDigest  map[string]string // the digests Env must match (secret.Digests), when known
	// Binary is the local file installed as the hive; empty means the running executable.
	Binary string
	// InstallMode is config.InstallSetsid (the default) or config.InstallSystemd.
	InstallMode string
	// FileRoots are the only folders the hive reads file:// models from
	// (--file-roots); empty: any regular .gguf file it can read.
	FileRoots []string
}

// ListenHost is the address the hive binds: loopback for local nodes, the
// node's host address otherwise.
func (n Node) ListenHost() string {
	if n.Local {
		return "127.0.0.1"
	}
	return n.SSH.Host
}

// HiveURL is the base URL of the node's hive.
func (n Node) HiveURL() string { return planner.HiveURL(n.Local, n.SSH.Host, n.HivePort) }

func (n Node) binPath() string   { return path.Join(n.InstallDir, "bin", "rbee") }
func (n Node) tokenPath() string { return path.Join(n.InstallDir, "hive.token") }
func (n Node) pidPath() string   { return path.Join(n.InstallDir, "hive.pid") }
func (n Node) logPath() string   { return path.Join(n.InstallDir, "hive.log") }
func (n Node) envPath() string   { return path.Join(n.InstallDir, "hive.env") }
func (n Node) dataDir() string   { return path.Join(n.InstallDir, "data") }
func (n Node) unitName() string  { return "rbee-hive-" + n.Name + ".service" }

// where names the node for messages: "gpu1 (10.0.0.5)" or "local".
func (n Node) where() string {
	if n.Local {
		return n.Name + " (this machine)"
	}
	return n.Name + " (" + n.SSH.Host + ")"
}

// Dial opens the transport for a node.
func Dial(ctx context.Context, n Node) (transport.Transport, error) {
	if n.Local {
		return transport.NewLocal(), nil
	}
	cfg := n.SSH
	cfg.Node = n.Name
	return transport.DialSSH(ctx, cfg)
}

// InstalledHive is what an install leaves behind, for the state record.
type InstalledHive struct {
	URL          string
	Token        string
	Version      string
	BinarySHA256 string
	CPUVariant   string // the ggml CPU library its workers load
	Mode         string // setsid | systemd
}

// HealthTimeout bounds the wait for a freshly started hive to answer /v1/health.
var HealthTimeout = 60 * time.Second

// InstallHive copies the binary and its library folder to the node (each file
// sha256-verified, atomic rename),
// writes the token file (0600, kept across upgrades) and the env file
// (0600), stops a hive that runs from the install dir, starts the new one
// detached and waits for /v1/health. It needs five remote commands, so a
// slow link costs little.
func InstallHive(ctx context.Context, t transport.Transport, n Node) (InstalledHive, error) {
	bin, sum, err := hiveBinary(n.Binary)
	if err != nil {
		return InstalledHive{}, fmt.Errorf("hive binary for node %s: %w", n.Name, err)
	}
	envFile, err := n.envFile()
	if err != nil {
		return InstalledHive{}, err
	}
	token, err := prepare(ctx, t, n, envFile)
	if err != nil {
		return InstalledHive{}, err
	}
	if err := t.Upload(ctx, bin, n.binPath(), 0o755); err != nil {
		return InstalledHive{}, fmt.Errorf("copy the rbee binary to %s: %w", n.where(), err)
	}
	if err := uploadLibraries(ctx, t, n, bin); err != nil {
		return InstalledHive{}, err
	}
	mode, err := restartHive(ctx, t, n)
	if err != nil {
		return InstalledHive{}, err
	}
	h, err := waitHealthy(ctx, t, n, token)
	if err != nil {
		return InstalledHive{}, err
	}
	return InstalledHive{URL: n.HiveURL(), Token: token, Version: h.Version, BinarySHA256: sum, CPUVariant: h.CPUVariant, Mode: mode}, nil
}

// hiveBinary resolves the file installed as a hive (path, or this rbee
// executable when empty) and returns it with its sha256, which covers the
// library folder beside it (digest.WithLibraries).
func hiveBinary(path string) (file, sum string, err error) {
	if path == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", "", fmt.Errorf("find the running rbee binary to install: %w; set binary = \"/path/to/rbee\" on the node", err)
		}
		path = exe
	}
	path = transport.ExpandHome(path)
	sum, err = digest.WithLibraries(path, libraryDir(path))
	return path, sum, err
}

// HiveBinarySHA256 is the sha256 of the file InstallHive installs for a
// node's binary attribute (path, "" for this rbee executable); the planner
// compares hives against it (planner.Options.BinarySHA256).
func HiveBinarySHA256(path string) (string, error) {
	_, sum, err := hiveBinary(path)
	return sum, err
}

// prepareScript creates the install dir ($1, with bin/ and data/), the
// token file $2 and the env file $3. Stdin is a fresh token on one line,
// then the env file's content (none: no env file). An existing token is
// kept (its mode fixed to 0600), else the fresh one is written. It prints
// the token in use.
const prepareScript = `set -e
mkdir -p -- "$1" "$1/bin" "$1/data"
IFS= read -r fresh
umask 077
if [ -s "$2" ]; then
  chmod 600 "$2"
else
  printf '%s\n' "$fresh" > "$2.tmp"
  chmod 600 "$2.tmp"
  mv -f "$2.tmp" "$2"
fi
cat > "$3.tmp"
if [ -s "$3.tmp" ]; then
  chmod 600 "$3.tmp"
  mv -f "$3.tmp" "$3"
else
  rm -f -- "$3.tmp" "$3"
fi
cat "$2"`

// prepare creates the install dir, writes the env file and returns the hive token.
func prepare(ctx context.Context, t transport.Transport, n Node, envFile []byte) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	fresh := hex.EncodeToString(b)
	stdin := io.MultiReader(strings.NewReader(fresh+"\n"), bytes.NewReader(envFile))
	out, err := t.Run(ctx, []string{"sh", "-c", prepareScript, "sh", n.InstallDir, n.tokenPath(), n.envPath()}, stdin)
	if err != nil {
		user := n.SSH.User
		if n.Local {
			user = "this user"
		}
		return "", fmt.Errorf("prepare install dir %s on %s: %w (check that %s may write there, or change install_dir)", n.InstallDir, n.where(), err, user)
	}
	token, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	token = strings.TrimSpace(token)
	if token == "" {
		return "", fmt.Errorf("the hive token file %s on %s is empty", n.tokenPath(), n.where())
	}
	return token, nil
}

// stopScript stops the node's hive. $1 pid file, $2 hive binary, $3 bin dir,
// $4 systemd unit file, $5 unit name. A hive started detached is stopped
// only if its pid still runs $2 (possibly replaced on disk since): SIGTERM,
// then SIGKILL after 35 s (a hive takes up to 30 s to stop its workers).
// Then every process still running a program from the bin dir is ended:
// workers a crashed or killed hive left behind (Linux /proc; one ls, not a
// readlink per process, which costs 0.1 s of CPU on a quiet machine).
const stopScript = `pidfile=$1 bin=$2 bindir=$3 unit=$4 name=$5
if [ -f "$unit" ] && command -v systemctl >/dev/null 2>&1; then systemctl stop "$name" || true; fi
if [ -f "$pidfile" ]; then
  pid=$(cat "$pidfile")
  case "$pid" in ''|*[!0-9]*) pid= ;; esac
  if [ -n "$pid" ] && [ -e /proc/$pid/exe ]; then
    exe=$(readlink /proc/$pid/exe 2>/dev/null || true)
    case "$exe" in "$bin"|"$bin (deleted)") ;; *) pid= ;; esac
  fi
  if [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; then
    i=0
    while kill -0 "$pid" 2>/dev/null; do
      i=$((i+1))
      if [ $i -ge 350 ]; then kill -KILL "$pid" 2>/dev/null; sleep 0.2; break; fi
      sleep 0.1
    done
  fi
  rm -f "$pidfile"
fi
[ -d /proc/self ] || exit 0
list() {
  ls -l /proc/[0-9]*/exe 2>/dev/null | grep -F -e "-> $bindir/" | sed -n 's|.* /proc/\([0-9]*\)/exe -> .*|\1|p'
}
pids=$(list)
[ -n "$pids" ] || exit 0
kill -TERM $pids 2>/dev/null
i=0
while [ $i -lt 50 ] && [ -n "$(list)" ]; do sleep 0.1; i=$((i+1)); done
pids=$(list)
[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
exit 0`

func (n Node) unitPath() string { return "/etc/systemd/system/" + n.unitName() }

func (n Node) stopArgs() []string {
	return []string{n.pidPath(), n.binPath(), path.Join(n.InstallDir, "bin"), n.unitPath(), n.unitName()}
}

// stopHive stops the node's hive (systemd unit or detached process) and any
// worker it left behind; a hive that does not run is not an error.
func stopHive(ctx context.Context, t transport.Transport, n Node) error {
	argv := append([]string{"sh", "-c", stopScript, "sh"}, n.stopArgs()...)
	if _, err := t.Run(ctx, argv, nil); err != nil {
		return fmt.Errorf("stop the hive on %s: %w", n.where(), err)
	}
	return nil
}

// hiveArgv is the command line of the node's hive. The env travels in the
// env file, never on the command line, where ps would show it.
func hiveArgv(n Node) []string {
	argv := []string{n.binPath(), "hive",
		"--listen", net.JoinHostPort(n.ListenHost(), strconv.Itoa(n.HivePort)),
		"--data-dir", n.dataDir(),
		"--token-file", n.tokenPath()}
	if len(n.Env) > 0 {
		argv = append(argv, "--env-file", n.envPath())
	}
	for _, root := range n.FileRoots {
		argv = append(argv, "--file-roots", root)
	}
	return argv
}

// startScript follows stopScript (same first five arguments): $6 is the
// wanted mode (setsid or systemd), $7 the log file, "$@" after them the
// hive's command line (setsid rbee hive ...). In systemd mode on
// a node that runs systemd the unit file comes on stdin. It prints the mode
// used.
const startScript = `mode=$6 log=$7 pidfile=$1 unit=$4 name=$5
shift 7
if [ "$mode" = systemd ] && [ -d /run/systemd/system ]; then
  cat > "$unit.tmp" && mv -f "$unit.tmp" "$unit"
  systemctl daemon-reload && systemctl enable "$name" >/dev/null 2>&1 && systemctl restart "$name"
  echo systemd
  exit
fi
cd /
"$@" >>"$log" 2>&1 </dev/null &
echo $! >"$pidfile"
echo setsid`

// restartHive stops a running hive and starts the new one, in one remote
// command: a systemd unit when install_mode = "systemd" and the node runs
// systemd, else a detached process in its own session (setsid).
func restartHive(ctx context.Context, t transport.Transport, n Node) (string, error) {
	// stopScript ends with exit statements on its early paths: run it in a subshell.
	script := "( " + stopScript + " )\n" + startScript
	argv := append([]string{"sh", "-c", script, "sh"}, n.stopArgs()...)
	mode := n.InstallMode
	if mode == "" {
		mode = config.InstallSetsid
	}
	argv = append(argv, mode, n.logPath(), "setsid")
	argv = append(argv, hiveArgv(n)...)
	out, err := t.Run(ctx, argv, strings.NewReader(unitFile(n)))
	if err != nil {
		return "", fmt.Errorf("start the hive on %s: %w", n.where(), err)
	}
	used := strings.TrimSpace(string(out))
	if mode == config.InstallSystemd && used != config.InstallSystemd {
		slog.Warn("install_mode is systemd but the node does not run systemd; the hive was started as a detached process", "node", n.Name)
	}
	return used, nil
}

// systemdQuote quotes one word for a unit file's ExecStart.
func systemdQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%", "$", "$$", "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// unitFile is the systemd unit of the node's hive.
func unitFile(n Node) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[Unit]\nDescription=rbee hive %s\nAfter=network-online.target\n\n[Service]\n", n.Name)
	q := make([]string, 0, 8)
	for _, a := range hiveArgv(n) {
		q = append(q, systemdQuote(a))
	}
	fmt.Fprintf(&b, "ExecStart=%s\nRestart=on-failure\nKillMode=mixed\nTimeoutStopSec=35\n\n[Install]\nWantedBy=multi-user.target\n", strings.Join(q, " "))
	return b.String()
}

// waitHealthy polls /v1/health until the hive answers; on timeout the error
// carries the end of the hive's log.
func waitHealthy(ctx context.Context, t transport.Transport, n Node, token string) (hiveapi.Health, error) {
	c := hiveapi.NewClient(n.HiveURL(), token)
	deadline := time.Now().Add(HealthTimeout)
	var last error
	nextCheck := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		h, err := c.Health(hctx)
		cancel()
		if err == nil {
			return h, nil
		}
		last = err
		if ctx.Err() != nil {
			return hiveapi.Health{}, ctx.Err()
		}
		// A hive that already exited will not come up: stop waiting.
		if time.Now().Before(nextCheck) {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		nextCheck = time.Now().Add(2 * time.Second)
		if out, err := t.Run(ctx, []string{"sh", "-c", `[ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null && echo up || echo down`, "sh", n.pidPath()}, nil); err == nil && strings.TrimSpace(string(out)) == "down" && n.InstallMode != config.InstallSystemd {
			last = errors.New("the hive process exited")
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	logTail, _ := t.Run(ctx, []string{"tail", "-n", "15", "--", n.logPath()}, nil)
	return hiveapi.Health{}, fmt.Errorf("hive on %s did not answer on %s/v1/health: %v\nlast lines of %s:\n%s",
		n.where(), n.HiveURL(), last, n.logPath(), indent(string(logTail)))
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "  (empty)"
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// uninstallScript follows stopScript (same five arguments), then removes
// the systemd unit ($4) if any and what apply put in the install dir ($6),
// and the dir itself when nothing else is left in it.
const uninstallScript = `unit=$4 name=$5 dir=$6
if [ -f "$unit" ]; then
  systemctl disable "$name" >/dev/null 2>&1 || true
  rm -f "$unit"
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
rm -rf -- "$dir/bin" "$dir/data" "$dir/hive.token" "$dir/hive.env" "$dir/hive.pid" "$dir/hive.log"
rmdir -- "$dir" 2>/dev/null || echo "kept $dir: it holds files rbee did not put there"`

// UninstallHive stops the hive and its workers, removes what apply put in
// the install dir, then the dir itself if nothing else is left in it.
func UninstallHive(ctx context.Context, t transport.Transport, n Node) error {
	script := "( " + stopScript + " )\n" + uninstallScript
	argv := append([]string{"sh", "-c", script, "sh"}, n.stopArgs()...)
	argv = append(argv, n.InstallDir)
	out, err := t.Run(ctx, argv, nil)
	if err != nil {
		return fmt.Errorf("uninstall the hive from %s on %s: %w", n.InstallDir, n.where(), err)
	}
	if msg := strings.TrimSpace(string(out)); msg != "" {
		slog.Warn("install dir not removed", "node", n.Name, "detail", msg)
	}
	return nil
}

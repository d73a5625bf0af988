package applier

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/applier/transport"
	"github.com/rbee-dev/rbee/config"
)

// Node is what apply needs to know to install, reach and remove a hive.
type Node struct {
	Name  string
	Local bool                // connection = "local": no SSH, the hive runs on this machine
	SSH   transport.SSHConfig // for remote nodes
	// InstallDir holds bin/rbee, hive.token, hive.pid, hive.log and data/.
	InstallDir string
	HivePort   int
	Env        map[string]string // environment of the hive and its workers
	// Binary is the local file installed as the hive; empty means the running executable.
	Binary string
	// InstallMode is config.InstallSetsid (the default) or config.InstallSystemd.
	InstallMode string
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
func (n Node) HiveURL() string {
	return "http://" + net.JoinHostPort(n.ListenHost(), strconv.Itoa(n.HivePort))
}

func (n Node) binPath() string   { return path.Join(n.InstallDir, "bin", "rbee") }
func (n Node) tokenPath() string { return path.Join(n.InstallDir, "hive.token") }
func (n Node) pidPath() string   { return path.Join(n.InstallDir, "hive.pid") }
func (n Node) logPath() string   { return path.Join(n.InstallDir, "hive.log") }
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
	Mode         string // setsid | systemd
}

// HealthTimeout bounds the wait for a freshly started hive to answer /v1/health.
var HealthTimeout = 60 * time.Second

// InstallHive copies the binary to the node (sha256-verified, atomic rename),
// writes the token file (0600, kept across upgrades), stops a hive that runs
// from the install dir, starts the new one detached and waits for /v1/health.
func InstallHive(ctx context.Context, t transport.Transport, n Node) (InstalledHive, error) {
	bin := n.Binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return InstalledHive{}, fmt.Errorf("find the running rbee binary to install: %w; set binary = \"/path/to/rbee\" on node %s", err, n.Name)
		}
		bin = exe
	}
	bin = transport.ExpandHome(bin)
	sum, err := transport.FileSHA256(bin)
	if err != nil {
		return InstalledHive{}, fmt.Errorf("hive binary for node %s: %w", n.Name, err)
	}
	if _, err := t.Run(ctx, []string{"mkdir", "-p", "--", n.InstallDir, path.Join(n.InstallDir, "bin"), n.dataDir()}, nil); err != nil {
		return InstalledHive{}, fmt.Errorf("create install dir %s on %s: %w (check that user %q may write there, or change install_dir)", n.InstallDir, n.where(), err, n.SSH.User)
	}
	if err := t.Upload(ctx, bin, n.binPath(), 0o755); err != nil {
		return InstalledHive{}, fmt.Errorf("copy the rbee binary to %s: %w", n.where(), err)
	}
	token, err := ensureToken(ctx, t, n)
	if err != nil {
		return InstalledHive{}, err
	}
	if err := stopHive(ctx, t, n); err != nil {
		return InstalledHive{}, err
	}
	mode, err := startHive(ctx, t, n)
	if err != nil {
		return InstalledHive{}, err
	}
	h, err := waitHealthy(ctx, t, n, token)
	if err != nil {
		return InstalledHive{}, err
	}
	return InstalledHive{URL: n.HiveURL(), Token: token, Version: h.Version, BinarySHA256: sum, Mode: mode}, nil
}

// ensureToken keeps the node's token if it has one, or writes a new one with mode 0600.
func ensureToken(ctx context.Context, t transport.Transport, n Node) (string, error) {
	out, err := t.Run(ctx, []string{"sh", "-c", `[ -f "$1" ] && cat "$1" || true`, "sh", n.tokenPath()}, nil)
	if err != nil {
		return "", fmt.Errorf("read the hive token on %s: %w", n.where(), err)
	}
	if tok := strings.TrimSpace(string(out)); tok != "" {
		// Make sure the mode is right even if someone changed it.
		if _, err := t.Run(ctx, []string{"chmod", "600", "--", n.tokenPath()}, nil); err != nil {
			return "", fmt.Errorf("chmod the hive token on %s: %w", n.where(), err)
		}
		return tok, nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(b)
	script := `umask 077; cat > "$1.tmp" && chmod 600 "$1.tmp" && mv -f "$1.tmp" "$1"`
	if _, err := t.Run(ctx, []string{"sh", "-c", script, "sh", n.tokenPath()}, strings.NewReader(tok+"\n")); err != nil {
		return "", fmt.Errorf("write the hive token on %s: %w", n.where(), err)
	}
	return tok, nil
}

// stopScript stops the hive whose pid is in $1 if that process still runs
// $2 (possibly replaced on disk since): SIGTERM, then SIGKILL after 35 s
// (a hive takes up to 30 s to stop its workers).
const stopScript = `pidfile=$1 bin=$2
[ -f "$pidfile" ] || exit 0
pid=$(cat "$pidfile")
case "$pid" in ''|*[!0-9]*) rm -f "$pidfile"; exit 0;; esac
if [ -e /proc/$pid/exe ]; then
  exe=$(readlink /proc/$pid/exe 2>/dev/null || true)
  case "$exe" in "$bin"|"$bin (deleted)") ;; *) rm -f "$pidfile"; exit 0;; esac
fi
kill -TERM "$pid" 2>/dev/null || { rm -f "$pidfile"; exit 0; }
i=0
while kill -0 "$pid" 2>/dev/null; do
  i=$((i+1))
  if [ $i -ge 350 ]; then kill -KILL "$pid" 2>/dev/null; sleep 0.2; break; fi
  sleep 0.1
done
rm -f "$pidfile"`

// reapScript ends every process that still runs a program from the bin dir
// $1: workers a crashed or killed hive left behind (Linux /proc).
const reapScript = `bindir=$1
[ -d /proc/self ] || exit 0
list() {
  for p in /proc/[0-9]*; do
    exe=$(readlink "$p/exe" 2>/dev/null) || continue
    case "$exe" in "$bindir"/*) echo "${p#/proc/}";; esac
  done
}
pids=$(list)
[ -n "$pids" ] || exit 0
kill -TERM $pids 2>/dev/null
i=0
while [ $i -lt 50 ] && [ -n "$(list)" ]; do sleep 0.1; i=$((i+1)); done
pids=$(list)
[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
exit 0`

// stopHive stops the node's hive (systemd unit or detached process); a hive
// that does not run is not an error.
func stopHive(ctx context.Context, t transport.Transport, n Node) error {
	unit := "/etc/systemd/system/" + n.unitName()
	script := `[ -f "$1" ] && command -v systemctl >/dev/null 2>&1 && systemctl stop "$2" || true`
	if _, err := t.Run(ctx, []string{"sh", "-c", script, "sh", unit, n.unitName()}, nil); err != nil {
		return fmt.Errorf("stop the hive unit on %s: %w", n.where(), err)
	}
	if _, err := t.Run(ctx, []string{"sh", "-c", stopScript, "sh", n.pidPath(), n.binPath()}, nil); err != nil {
		return fmt.Errorf("stop the hive on %s: %w", n.where(), err)
	}
	if _, err := t.Run(ctx, []string{"sh", "-c", reapScript, "sh", path.Join(n.InstallDir, "bin")}, nil); err != nil {
		return fmt.Errorf("stop leftover workers on %s: %w", n.where(), err)
	}
	return nil
}

// hiveArgv is the command line of the node's hive.
func hiveArgv(n Node) []string {
	return []string{n.binPath(), "hive",
		"--listen", net.JoinHostPort(n.ListenHost(), strconv.Itoa(n.HivePort)),
		"--data-dir", n.dataDir(),
		"--token-file", n.tokenPath()}
}

func envPairs(env map[string]string) []string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]string, 0, len(keys))
	for _, k := range keys {
		pairs = append(pairs, k+"="+env[k])
	}
	return pairs
}

// startScript runs "$@" detached with output to $2 and records its pid in $1.
const startScript = `pidfile=$1 log=$2
shift 2
cd /
"$@" >>"$log" 2>&1 </dev/null &
echo $! >"$pidfile"`

// startHive starts the hive as a systemd unit (install_mode = "systemd" on a
// node running systemd) or as a detached process in its own session.
func startHive(ctx context.Context, t transport.Transport, n Node) (string, error) {
	if n.InstallMode == config.InstallSystemd {
		if _, err := t.Run(ctx, []string{"test", "-d", "/run/systemd/system"}, nil); err == nil {
			return config.InstallSystemd, startUnit(ctx, t, n)
		}
		slog.Warn("install_mode is systemd but the node does not run systemd; starting the hive as a detached process", "node", n.Name)
	}
	argv := []string{"sh", "-c", startScript, "sh", n.pidPath(), n.logPath(), "setsid", "env"}
	argv = append(argv, envPairs(n.Env)...)
	argv = append(argv, hiveArgv(n)...)
	if _, err := t.Run(ctx, argv, nil); err != nil {
		return "", fmt.Errorf("start the hive on %s: %w", n.where(), err)
	}
	return config.InstallSetsid, nil
}

// systemdQuote quotes one word for a unit file's ExecStart or Environment.
func systemdQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%", "$", "$$", "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

func startUnit(ctx context.Context, t transport.Transport, n Node) error {
	var b strings.Builder
	fmt.Fprintf(&b, "[Unit]\nDescription=rbee hive %s\nAfter=network-online.target\n\n[Service]\n", n.Name)
	for _, kv := range envPairs(n.Env) {
		fmt.Fprintf(&b, "Environment=%s\n", systemdQuote(kv))
	}
	q := make([]string, 0, 8)
	for _, a := range hiveArgv(n) {
		q = append(q, systemdQuote(a))
	}
	fmt.Fprintf(&b, "ExecStart=%s\nRestart=on-failure\nKillMode=mixed\nTimeoutStopSec=35\n\n[Install]\nWantedBy=multi-user.target\n", strings.Join(q, " "))
	unit := "/etc/systemd/system/" + n.unitName()
	script := `cat > "$1.tmp" && mv -f "$1.tmp" "$1" && systemctl daemon-reload && systemctl enable "$2" && systemctl restart "$2"`
	if _, err := t.Run(ctx, []string{"sh", "-c", script, "sh", unit, n.unitName()}, strings.NewReader(b.String())); err != nil {
		return fmt.Errorf("install the systemd unit %s on %s: %w", n.unitName(), n.where(), err)
	}
	return nil
}

// waitHealthy polls /v1/health until the hive answers; on timeout the error
// carries the end of the hive's log.
func waitHealthy(ctx context.Context, t transport.Transport, n Node, token string) (hiveapi.Health, error) {
	c := hiveapi.NewClient(n.HiveURL(), token)
	deadline := time.Now().Add(HealthTimeout)
	var last error
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
		if out, err := t.Run(ctx, []string{"sh", "-c", `[ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null && echo up || echo down`, "sh", n.pidPath()}, nil); err == nil && strings.TrimSpace(string(out)) == "down" && n.InstallMode != config.InstallSystemd {
			last = errors.New("the hive process exited")
			break
		}
		time.Sleep(200 * time.Millisecond)
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

// UninstallHive stops the hive and removes what apply put in the install
// dir, then the dir itself if nothing else is left in it.
func UninstallHive(ctx context.Context, t transport.Transport, n Node) error {
	if err := stopHive(ctx, t, n); err != nil {
		return err
	}
	unit := "/etc/systemd/system/" + n.unitName()
	script := `[ -f "$1" ] || exit 0
systemctl disable "$2" >/dev/null 2>&1 || true
rm -f "$1"
systemctl daemon-reload || true`
	if _, err := t.Run(ctx, []string{"sh", "-c", script, "sh", unit, n.unitName()}, nil); err != nil {
		return fmt.Errorf("remove the systemd unit on %s: %w", n.where(), err)
	}
	argv := []string{"rm", "-rf", "--", path.Join(n.InstallDir, "bin"), n.dataDir(), n.tokenPath(), n.pidPath(), n.logPath()}
	if _, err := t.Run(ctx, argv, nil); err != nil {
		return fmt.Errorf("remove the hive files from %s on %s: %w", n.InstallDir, n.where(), err)
	}
	if _, err := t.Run(ctx, []string{"rmdir", "--", n.InstallDir}, nil); err != nil {
		slog.Warn("install dir not removed: it holds files rbee did not put there", "node", n.Name, "dir", n.InstallDir, "err", err)
	}
	return nil
}

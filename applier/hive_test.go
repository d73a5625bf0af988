package applier

import (
	"context"
	"encoding/json"
	"flag"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/applier/transport"
	"github.com/rbee-dev/rbee/secret"
)

// TestMain lets the test binary stand in for `rbee hive`: InstallHive copies
// and starts it like the real binary, and it answers /v1/health.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "hive" {
		fakeHive(os.Args[2:])
		return
	}
	os.Exit(m.Run())
}

func fakeHive(args []string) {
	fs := flag.NewFlagSet("hive", flag.ExitOnError)
	listen := fs.String("listen", "", "")
	fs.String("data-dir", "", "")
	tokenFile := fs.String("token-file", "", "")
	envFile := fs.String("env-file", "", "")
	_ = fs.Parse(args)
	tag := ""
	if *envFile != "" {
		pairs, err := secret.ReadEnvFile(*envFile)
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		for _, p := range pairs {
			if v, ok := strings.CutPrefix(p, "FAKE_HIVE_TAG="); ok {
				tag = v
			}
		}
	}
	tok, err := api.ReadTokenFile(*tokenFile)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/health", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+tok {
			w.WriteHeader(401)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "ok", "version": "test-" + tag})
	})
	go func() { _ = http.Serve(ln, mux) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
}

func freeLoopbackPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func readPID(t *testing.T, n Node) int {
	b, err := os.ReadFile(n.pidPath())
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestInstallUpgradeUninstall installs the stand-in hive on this machine,
// installs it again (an upgrade: the old process is stopped, the token kept),
// then uninstalls it and checks nothing is left.
func TestInstallUpgradeUninstall(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "install dir") // a space on purpose
	n := Node{Name: "local", Local: true, InstallDir: dir, HivePort: freeLoopbackPort(t), Binary: exe,
		Env: map[string]string{"FAKE_HIVE_TAG": "it's $HOME"}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr := transport.NewLocal()

	got, err := InstallHive(ctx, tr, n)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != "test-it's $HOME" {
		t.Errorf("version %q: the env map did not reach the hive unchanged", got.Version)
	}
	checkEnvPrivate(t, n, readPID(t, n), "it's $HOME")
	fi, err := os.Stat(n.tokenPath())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	first := readPID(t, n)

	again, err := InstallHive(ctx, tr, n)
	if err != nil {
		t.Fatal(err)
	}
	if again.Token != got.Token {
		t.Error("an upgrade changed the hive token")
	}
	second := readPID(t, n)
	if second == first {
		t.Error("the hive was not restarted")
	}
	if !gone(first, 10*time.Second) {
		t.Errorf("old hive %d still runs 10 s after the upgrade", first)
	}

	if err := UninstallHive(ctx, tr, n); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("install dir %s still exists", dir)
	}
	if !gone(second, 10*time.Second) {
		t.Errorf("hive %d still runs 10 s after uninstall", second)
	}
}

// gone polls until process pid has exited (or is a zombie nobody reaped
// yet), for at most bound.
func gone(pid int, bound time.Duration) bool {
	for deadline := time.Now().Add(bound); ; time.Sleep(20 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return true
		}
		if st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); strings.Contains(string(st), ") Z ") {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

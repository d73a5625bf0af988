package applier

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/applier/transport"
	"github.com/rbee-dev/rbee/secret"
)

// checkEnvPrivate checks that the hive pid got value through hive.env
// (mode 0600) and that no process on this machine has it on its command line.
func checkEnvPrivate(t *testing.T, n Node, pid int, value string) {
	t.Helper()
	fi, err := os.Stat(n.envPath())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("env file: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(n.envPath()); !strings.Contains(string(b), value) {
		t.Fatalf("env file lacks the value:\n%s", b)
	}
	if _, err := os.Stat("/proc/self/cmdline"); err != nil {
		t.Skip("no /proc: command lines cannot be read")
	}
	if b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline")); err != nil || !strings.Contains(string(b), "--env-file") {
		t.Errorf("hive %d command line %q: want --env-file (%v)", pid, b, err)
	}
	all, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range all {
		if b, _ := os.ReadFile(f); strings.Contains(string(b), value) {
			t.Errorf("%s shows the env value: %q", f, b)
		}
	}
}

// TestInstallEnvFile installs the stand-in hive with a secret env, then
// again without env: the file goes and the flag with it.
func TestInstallEnvFile(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const value = "tok-ENVFILE-7f3a"
	env := map[string]string{"FAKE_HIVE_TAG": value}
	n := Node{Name: "local", Local: true, InstallDir: filepath.Join(t.TempDir(), "d"), HivePort: freeLoopbackPort(t), Binary: exe,
		Env: env, envDigest: secret.Digests(env)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr := transport.NewLocal()
	defer func() { _ = UninstallHive(context.WithoutCancel(ctx), tr, n) }()

	got, err := InstallHive(ctx, tr, n)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != "test-"+value {
		t.Fatalf("version %q: the env file did not reach the hive", got.Version)
	}
	checkEnvPrivate(t, n, readPID(t, n), value)

	n.Env, n.envDigest = nil, nil
	got, err = InstallHive(ctx, tr, n)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != "test-" {
		t.Errorf("version %q after the env was removed", got.Version)
	}
	if _, err := os.Stat(n.envPath()); !os.IsNotExist(err) {
		t.Errorf("hive.env is still there after the env was removed: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(readPID(t, n)), "cmdline")); strings.Contains(string(b), "--env-file") {
		t.Errorf("hive started with --env-file but has no env: %q", b)
	}
}

// TestInstallRefusesEnvWithoutValues: a desired record whose digests say
// there is env but whose values are missing (a plan file not restored) is
// refused before the node is touched.
func TestInstallRefusesEnvWithoutValues(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"no values", nil},
		{"other value", map[string]string{"HF_TOKEN": "other"}},
		{"other key", map[string]string{"HF_ENDPOINT": "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := Node{Name: "local", Local: true, InstallDir: dir, HivePort: 9999, Env: tt.env,
				envDigest: secret.Digests(map[string]string{"HF_TOKEN": "hf_x"})}
			_, err := InstallHive(context.Background(), transport.NewLocal(), n)
			if err == nil || !strings.Contains(err.Error(), "not in the plan") {
				t.Fatalf("error %v", err)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("the install dir was created: %v", err)
			}
		})
	}
}

func TestUnitFileHoldsNoEnv(t *testing.T) {
	n := Node{Name: "gpu1", SSH: transport.SSHConfig{Host: "10.0.0.5"}, InstallDir: "/opt/rbee", HivePort: 9200,
		Env: map[string]string{"HF_TOKEN": "hf_UNITSECRET"}}
	u := unitFile(n)
	if strings.Contains(u, "hf_UNITSECRET") || strings.Contains(u, "Environment=") {
		t.Fatalf("unit file shows the env:\n%s", u)
	}
	if !strings.Contains(u, `"--env-file" "/opt/rbee/hive.env"`) {
		t.Fatalf("unit file does not start the hive with its env file:\n%s", u)
	}
}

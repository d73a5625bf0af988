package transport

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/internal/testsshd"
)

// TestSSHAgainstOpenSSH runs commands and uploads through a real OpenSSH
// server on a loopback address (skipped where no sshd is installed).
func TestSSHAgainstOpenSSH(t *testing.T) {
	if _, err := os.Stat(testsshd.Binary); err != nil {
		t.Skipf("no OpenSSH server at %s", testsshd.Binary)
	}
	dir := t.TempDir()
	keys, err := testsshd.NewKeys(filepath.Join(dir, "ssh"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := keys.Start("n1", "127.0.0.2", filepath.Join(dir, "sshd"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := DialSSH(ctx, SSHConfig{Node: "n1", Host: srv.Addr, Port: srv.Port, User: keys.User, Identity: keys.ClientKey, KnownHosts: keys.KnownHosts})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Arguments survive the remote shell byte for byte.
	args := []string{"a b", "it's", "$(id)", "`id`", "; echo pwned", "*", "", "new\nline"}
	out, err := c.Run(ctx, append([]string{"printf", `%s\0`}, args...), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00"); strings.Join(got, "|") != strings.Join(args, "|") {
		t.Errorf("remote argv %q, want %q", got, args)
	}
	// stdin reaches the command; a failure is an ExitError with stderr.
	out, err = c.Run(ctx, []string{"cat"}, strings.NewReader("from stdin"))
	if err != nil || string(out) != "from stdin" {
		t.Errorf("cat = %q, %v", out, err)
	}
	if _, err = c.Run(ctx, []string{"sh", "-c", "echo oops >&2; exit 7"}, nil); err == nil || !strings.Contains(err.Error(), "status 7") || !strings.Contains(err.Error(), "oops") {
		t.Errorf("want exit status 7 with stderr, got %v", err)
	}

	src := filepath.Join(dir, "payload")
	if err := os.WriteFile(src, []byte(strings.Repeat("rbee", 100000)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dst := range []string{
		filepath.Join(dir, "remote", "new", "bin", "rbee"),          // folder created on demand, SCP
		filepath.Join(dir, "remote", "with space's", "bin", "rbee"), // a path SCP would mangle
	} {
		if err := c.Upload(ctx, src, dst, 0o755); err != nil {
			t.Fatalf("upload to %s: %v", dst, err)
		}
		fi, err := os.Stat(dst)
		if err != nil || fi.Mode().Perm() != 0o755 || fi.Size() != 400000 {
			t.Fatalf("%s: %v %v", dst, fi, err)
		}
		if ents, _ := os.ReadDir(filepath.Dir(dst)); len(ents) != 1 {
			t.Errorf("temporary files left beside %s: %v", dst, ents)
		}
		// An upgrade replaces the file atomically.
		if err := c.Upload(ctx, src, dst, 0o755); err != nil {
			t.Fatalf("second upload to %s: %v", dst, err)
		}
	}
}

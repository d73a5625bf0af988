package transport

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/digest"
	"golang.org/x/crypto/ssh"
)

func TestQuote(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", "''"},
		{"plain", "plain"},
		{"/opt/rbee/bin/rbee", "/opt/rbee/bin/rbee"},
		{"--listen=127.0.0.2:9200", "--listen=127.0.0.2:9200"},
		{"two words", "'two words'"},
		{"it's", `'it'\''s'`},
		{"$(reboot)", "'$(reboot)'"},
		{"`id`", "'`id`'"},
		{"a;b&&c|d", "'a;b&&c|d'"},
		{"*.gguf", "'*.gguf'"},
		{"~/x", "'~/x'"},
		{"line\nbreak", "'line\nbreak'"},
		{`back\slash`, `'back\slash'`},
		{`"dq"`, `'"dq"'`},
		{"HF_TOKEN=a b", "'HF_TOKEN=a b'"},
	}
	for _, tc := range tests {
		if got := Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestJoinRoundTrip feeds quoted command lines to a real POSIX shell and
// checks that every argument comes back byte for byte.
func TestJoinRoundTrip(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	cases := [][]string{
		{"a", "b c", ""},
		{"it's", "'", "''", `\'`},
		{"$HOME", "${PATH}", "$(touch /tmp/pwned)", "`touch /tmp/pwned`"},
		{"; rm -rf /", "a|b", "a&b", "a>b", "<", "#comment"},
		{"*", "?", "[a-z]", "~", "~root"},
		{"tab\there", "new\nline", "unicode é 漢字"},
		{"!", "!!", "{a,b}", "%s", "-n", "--"},
	}
	for _, args := range cases {
		line := "printf '%s\\0' " + Join(args)
		out, err := exec.Command(sh, "-c", line).Output()
		if err != nil {
			t.Fatalf("sh -c %q: %v", line, err)
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
		if len(got) != len(args) {
			t.Fatalf("%q came back as %q", args, got)
		}
		for i := range args {
			if got[i] != args[i] {
				t.Errorf("argument %d: %q came back as %q (line %s)", i, args[i], got[i], line)
			}
		}
	}
}

func TestLocalRunAndUpload(t *testing.T) {
	ctx := context.Background()
	l := NewLocal()
	out, err := l.Run(ctx, []string{"printf", "%s", "a b; $(x)"}, nil)
	if err != nil || string(out) != "a b; $(x)" {
		t.Fatalf("Run = %q, %v", out, err)
	}
	_, err = l.Run(ctx, []string{"sh", "-c", "echo boom >&2; exit 3"}, nil)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 3 || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("want exit 3 with stderr, got %v", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("payload"), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "a b", "bin", "rbee")
	if err := l.Upload(ctx, src, dst, 0o755); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dst)
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("stat %s: %v %v", dst, fi, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(dst))
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func writeKey(t *testing.T, path string, mode os.FileMode) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	sp, _ := ssh.NewPublicKey(pub)
	return sp
}

// handshakeServer accepts SSH handshakes on loopback for one authorized key.
// Sessions are not served: the tests only look at connection errors.
func handshakeServer(t *testing.T, authorized ssh.PublicKey) (addr string, hostKey ssh.PublicKey) {
	t.Helper()
	_, hpriv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(hpriv)
	if err != nil {
		t.Fatal(err)
	}
	conf := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(k.Marshal(), authorized.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("not authorized")
		},
	}
	conf.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				sc, chans, reqs, err := ssh.NewServerConn(c, conf)
				if err != nil {
					c.Close()
					return
				}
				go ssh.DiscardRequests(reqs)
				go func() {
					for ch := range chans {
						ch.Reject(ssh.Prohibited, "no sessions in this test")
					}
				}()
				sc.Wait()
			}()
		}
	}()
	return ln.Addr().String(), signer.PublicKey()
}

func TestSSHErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "id_good")
	goodPub := writeKey(t, good, 0o600)
	wrong := filepath.Join(dir, "id_wrong")
	writeKey(t, wrong, 0o600)
	loose := filepath.Join(dir, "id_loose")
	writeKey(t, loose, 0o644)

	addr, hostKey := handshakeServer(t, goodPub)
	host, portS, _ := net.SplitHostPort(addr)
	var port int
	for _, c := range portS {
		port = port*10 + int(c-'0')
	}
	known := filepath.Join(dir, "known_hosts")
	line := "[" + host + "]:" + portS + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostKey)))
	if err := os.WriteFile(known, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "known_hosts_empty")
	os.WriteFile(empty, nil, 0o600)

	// A port nothing listens on.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	tests := []struct {
		name string
		cfg  SSHConfig
		want []string // substrings of the error; nil means success
	}{
		{"ok", SSHConfig{Identity: good, KnownHosts: known}, nil},
		{"missing key", SSHConfig{Identity: filepath.Join(dir, "nope"), KnownHosts: known}, []string{"does not exist", "ssh-keygen"}},
		{"loose key", SSHConfig{Identity: loose, KnownHosts: known}, []string{"mode 0644", "chmod 600"}},
		{"wrong key", SSHConfig{Identity: wrong, KnownHosts: known}, []string{"authentication", "refused", wrong, "ssh-add -l"}},
		{"unknown host", SSHConfig{Identity: good, KnownHosts: empty}, []string{"not in " + empty, "ssh-keyscan -p " + portS}},
		{"no known_hosts", SSHConfig{Identity: good, KnownHosts: filepath.Join(dir, "absent")}, []string{"ssh-keyscan"}},
		{"insecure opt-out", SSHConfig{Identity: good, KnownHosts: empty, InsecureIgnoreHostKey: true}, nil},
		{"unreachable", SSHConfig{Identity: good, KnownHosts: known, Port: closed}, []string{"SSH connection to n1 (127.0.0.1:", "failed after 3 attempts", "refused"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Node, cfg.Host, cfg.User = "n1", host, "rbee"
			if cfg.Port == 0 {
				cfg.Port = port
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := DialSSH(ctx, cfg)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("DialSSH: %v", err)
				}
				c.Close()
				return
			}
			if err == nil {
				c.Close()
				t.Fatal("DialSSH succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestVerifyScript checks the far-side check of Upload: a copy whose sha256
// differs is removed and never renamed into place.
func TestVerifyScript(t *testing.T) {
	dir := t.TempDir()
	tmp, dst := filepath.Join(dir, ".rbee.tmp"), filepath.Join(dir, "rbee")
	os.WriteFile(tmp, []byte("corrupted"), 0o600)
	good, _ := digest.Cached(tmp)
	ctx := context.Background()
	_, err := NewLocal().Run(ctx, []string{"sh", "-c", verifyScript, "sh", tmp, strings.Repeat("0", 64), dst, "0755"}, nil)
	if err == nil || !strings.Contains(err.Error(), "sha256 of the uploaded file") {
		t.Fatalf("want a checksum error, got %v", err)
	}
	if _, err := os.Stat(tmp); err == nil {
		t.Error("the bad copy was left behind")
	}
	if _, err := os.Stat(dst); err == nil {
		t.Error("the bad copy was renamed into place")
	}
	os.WriteFile(tmp, []byte("corrupted"), 0o600)
	if _, err := NewLocal().Run(ctx, []string{"sh", "-c", verifyScript, "sh", tmp, good, dst, "0755"}, nil); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("%v %v", fi, err)
	}
}

package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	scp "github.com/bramvdbogaerde/go-scp"
	"github.com/rbee-dev/rbee/digest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHConfig says how to reach one node over SSH.
type SSHConfig struct {
	Node     string // node name, used in messages
	Host     string
	Port     int    // default 22
	User     string // default $USER
	Identity string // private key file; empty means ssh-agent (SSH_AUTH_SOCK)
	// KnownHosts is the known_hosts file host keys are checked against
	// (default ~/.ssh/known_hosts).
	KnownHosts string
	// InsecureIgnoreHostKey skips host key verification (the config opt-out).
	InsecureIgnoreHostKey bool
	ConnectTimeout        time.Duration // per attempt; default 10 s
	Attempts              int           // default 3
}

// Backoff is the wait before each connection attempt after the first (jittered ±25%).
var Backoff = []time.Duration{0, 200 * time.Millisecond, 400 * time.Millisecond}

// SSH runs commands on a node over one SSH connection.
type SSH struct {
	cfg    SSHConfig
	client *ssh.Client
}

func (c *SSHConfig) addr() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

func (c *SSHConfig) defaults() {
	if c.Port == 0 {
		c.Port = 22
	}
	if c.User == "" {
		c.User = os.Getenv("USER")
		if c.User == "" {
			c.User = "root"
		}
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.Attempts == 0 {
		c.Attempts = 3
	}
	if c.KnownHosts == "" {
		if home, err := os.UserHomeDir(); err == nil {
			c.KnownHosts = filepath.Join(home, ".ssh", "known_hosts")
		}
	}
	c.Identity = ExpandHome(c.Identity)
	c.KnownHosts = ExpandHome(c.KnownHosts)
}

// ExpandHome replaces a leading ~/ with the user's home folder.
func ExpandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}

// DialSSH connects to a node, retrying unreachable hosts with backoff.
// Authentication and host key problems are not retried: their errors say
// what to fix.
func DialSSH(ctx context.Context, cfg SSHConfig) (*SSH, error) {
	cfg.defaults()
	auth, closeAgent, err := authMethods(cfg)
	if err != nil {
		return nil, err
	}
	defer closeAgent()
	hostKey, algos, err := hostKeyCheck(cfg)
	if err != nil {
		return nil, err
	}
	conf := &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              auth,
		HostKeyCallback:   hostKey,
		HostKeyAlgorithms: algos,
		Timeout:           cfg.ConnectTimeout,
	}
	var last error
	for i := 0; i < cfg.Attempts; i++ {
		if wait := jitter(Backoff[min(i, len(Backoff)-1)]); wait > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
		}
		client, err := dial(ctx, cfg, conf)
		if err == nil {
			return &SSH{cfg: cfg, client: client}, nil
		}
		if fatal := classify(cfg, err); fatal != nil {
			return nil, fatal
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("SSH connection to %s (%s) failed after %d attempts: %w; check that the host is up, that sshd listens on port %d and that no firewall blocks it",
		cfg.Node, cfg.addr(), cfg.Attempts, last, cfg.Port)
}

func dial(ctx context.Context, cfg SSHConfig, conf *ssh.ClientConfig) (*ssh.Client, error) {
	d := net.Dialer{Timeout: cfg.ConnectTimeout}
	conn, err := d.DialContext(ctx, "tcp", cfg.addr())
	if err != nil {
		return nil, err
	}
	// The handshake gets the same bound as the TCP connect.
	_ = conn.SetDeadline(time.Now().Add(cfg.ConnectTimeout))
	c, chans, reqs, err := ssh.NewClientConn(conn, cfg.addr(), conf)
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d*3/4 + time.Duration(rand.Int64N(int64(d)/2+1))
}

// classify turns errors that retrying cannot fix into messages that say how
// to fix them; it returns nil for errors worth another attempt.
func classify(cfg SSHConfig, err error) error {
	var ke *knownhosts.KeyError
	if errors.As(err, &ke) {
		if len(ke.Want) == 0 {
			return fmt.Errorf("SSH host key of %s (%s) is not in %s: check its fingerprint and add it with `ssh-keyscan -p %d %s >> %s` (or set insecure_ignore_host_key = true on the node to skip the check)",
				cfg.Node, cfg.addr(), cfg.KnownHosts, cfg.Port, cfg.Host, cfg.KnownHosts)
		}
		return fmt.Errorf("SSH host key of %s (%s) does not match %s line %d: the host was reinstalled or someone is intercepting the connection; if the change is expected, remove the old key with `ssh-keygen -R '[%s]:%d' -f %s` and add the new one with ssh-keyscan",
			cfg.Node, cfg.addr(), ke.Want[0].Filename, ke.Want[0].Line, cfg.Host, cfg.Port, cfg.KnownHosts)
	}
	var re *knownhosts.RevokedError
	if errors.As(err, &re) {
		return fmt.Errorf("SSH host key of %s (%s) is marked @revoked in %s: refusing to connect", cfg.Node, cfg.addr(), cfg.KnownHosts)
	}
	if strings.Contains(err.Error(), "unable to authenticate") {
		via := "the keys in your ssh-agent; list them with `ssh-add -l`"
		if cfg.Identity != "" {
			via = fmt.Sprintf("identity file %s; check that its public key (%s.pub) is in ~%s/.ssh/authorized_keys on the node, or load the right key into your agent and check it with `ssh-add -l`", cfg.Identity, cfg.Identity, cfg.User)
		}
		return fmt.Errorf("SSH authentication to %s as %s@%s was refused (tried %s): %w", cfg.Node, cfg.User, cfg.addr(), via, err)
	}
	return nil
}

// authMethods loads the identity file or connects to ssh-agent.
func authMethods(cfg SSHConfig) ([]ssh.AuthMethod, func(), error) {
	noop := func() {}
	if cfg.Identity != "" {
		fi, err := os.Stat(cfg.Identity)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, noop, fmt.Errorf("identity file %s of node %s does not exist: create a key with `ssh-keygen -t ed25519 -f %s` and install it with `ssh-copy-id -i %s %s@%s`, or fix the node's identity attribute",
					cfg.Identity, cfg.Node, cfg.Identity, cfg.Identity, cfg.User, cfg.Host)
			}
			return nil, noop, fmt.Errorf("identity file of node %s: %w", cfg.Node, err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			return nil, noop, fmt.Errorf("identity file %s of node %s has mode %04o, which lets other users read it; ssh keys must be private: run `chmod 600 %s`",
				cfg.Identity, cfg.Node, perm, cfg.Identity)
		}
		pem, err := os.ReadFile(cfg.Identity)
		if err != nil {
			return nil, noop, fmt.Errorf("identity file of node %s: %w", cfg.Node, err)
		}
		signer, err := ssh.ParsePrivateKey(pem)
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			if methods, closeAgent, aerr := agentAuth(); aerr == nil {
				return methods, closeAgent, nil
			}
			return nil, noop, fmt.Errorf("identity file %s of node %s is protected by a passphrase and no ssh-agent is reachable: start one and run `ssh-add %s` (check with `ssh-add -l`)",
				cfg.Identity, cfg.Node, cfg.Identity)
		}
		if err != nil {
			return nil, noop, fmt.Errorf("identity file %s of node %s is not a private key ssh can read: %w", cfg.Identity, cfg.Node, err)
		}
		return []ssh.AuthMethod{ssh.PublicKeys(signer)}, noop, nil
	}
	methods, closeAgent, err := agentAuth()
	if err != nil {
		return nil, noop, fmt.Errorf("node %s has no identity file and %v: set identity = \"~/.ssh/id_ed25519\" on the node, or start ssh-agent and add a key (`ssh-add`, check with `ssh-add -l`)", cfg.Node, err)
	}
	return methods, closeAgent, nil
}

func agentAuth() ([]ssh.AuthMethod, func(), error) {
	sock := os.Getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return nil, nil, errors.New("no ssh-agent is running (SSH_AUTH_SOCK is empty)")
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return nil, nil, fmt.Errorf("the ssh-agent at SSH_AUTH_SOCK=%s is not reachable (%v)", sock, err)
	}
	ag := agent.NewClient(conn)
	return []ssh.AuthMethod{ssh.PublicKeysCallback(ag.Signers)}, func() { conn.Close() }, nil
}

// hostKeyCheck builds the known_hosts callback and the host key algorithms
// the known keys of this host use, so the server offers a key we can check.
func hostKeyCheck(cfg SSHConfig) (ssh.HostKeyCallback, []string, error) {
	if cfg.InsecureIgnoreHostKey {
		return ssh.InsecureIgnoreHostKey(), nil, nil
	}
	if _, err := os.Stat(cfg.KnownHosts); errors.Is(err, fs.ErrNotExist) {
		// An absent file knows no host: every key is unknown.
		return func(string, net.Addr, ssh.PublicKey) error {
			return &knownhosts.KeyError{}
		}, nil, nil
	}
	cb, err := knownhosts.New(cfg.KnownHosts)
	if err != nil {
		return nil, nil, fmt.Errorf("known_hosts file %s cannot be read: %w", cfg.KnownHosts, err)
	}
	// Ask the database with a key it cannot know: the error lists the keys it has.
	var algos []string
	probe, _ := ssh.NewPublicKey(probeKey())
	var ke *knownhosts.KeyError
	if err := cb(cfg.addr(), &net.TCPAddr{IP: net.ParseIP(cfg.Host), Port: cfg.Port}, probe); errors.As(err, &ke) {
		seen := map[string]bool{}
		for _, k := range ke.Want {
			for _, a := range algorithmsFor(k.Key.Type()) {
				if !seen[a] {
					seen[a] = true
					algos = append(algos, a)
				}
			}
		}
	}
	return cb, algos, nil
}

func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// Run runs argv through the remote shell with every argument quoted.
func (s *SSH) Run(ctx context.Context, argv []string, stdin io.Reader) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("transport: empty command")
	}
	sess, err := s.client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("SSH session on %s (%s): %w", s.cfg.Node, s.cfg.addr(), err)
	}
	defer sess.Close()
	var out, errb bytes.Buffer
	sess.Stdin, sess.Stdout, sess.Stderr = stdin, &out, &errb
	done := make(chan error, 1)
	go func() { done <- sess.Run(Join(argv)) }()
	select {
	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGKILL)
		sess.Close()
		return out.Bytes(), ctx.Err()
	case err = <-done:
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		return out.Bytes(), &ExitError{Argv: argv, Code: ee.ExitStatus(), Stderr: errb.String()}
	}
	if err != nil {
		return out.Bytes(), fmt.Errorf("run %s on %s: %w", argv[0], s.cfg.Node, err)
	}
	return out.Bytes(), nil
}

// scpSafe matches paths that go-scp can pass to the remote scp unharmed (it
// quotes them for Go, not for the shell).
var scpSafe = regexp.MustCompile(`^[A-Za-z0-9/._+-]+$`)

// SHA256Func defines the shell function `sha256 FILE`, which prints the
// file's sha256 in hex, for scripts run on a node. openssl comes first: it
// uses the CPU's SHA instructions and hashes the rbee binary about 4 times
// faster than coreutils' sha256sum.
const SHA256Func = `sha256() {
  if command -v openssl >/dev/null 2>&1; then s=$(openssl dgst -sha256 -r "$1")
  elif command -v sha256sum >/dev/null 2>&1; then s=$(sha256sum "$1")
  else s=$(shasum -a 256 "$1"); fi
  printf '%s\n' "${s%% *}"
}
`

// verifyScript checks the sha256 of $1 against $2 and renames it to $3, or
// removes it. Arguments arrive as positional parameters, never as code.
const verifyScript = "set -e\n" + SHA256Func + `sum=$(sha256 "$1")
if [ "$sum" != "$2" ]; then rm -f "$1"; echo "sha256 of the uploaded file is $sum, want $2" >&2; exit 1; fi
chmod "$4" "$1"
mv -f "$1" "$3"`

// Upload copies a file with SCP to a temporary name beside remotePath,
// verifies its sha256 on the node and renames it into place.
func (s *SSH) Upload(ctx context.Context, localPath, remotePath string, mode fs.FileMode) error {
	sum, err := digest.Cached(localPath)
	if err != nil {
		return fmt.Errorf("upload %s: %w", localPath, err)
	}
	dir := path.Dir(remotePath)
	tmp := path.Join(dir, "."+path.Base(remotePath)+".tmp-"+randomHex())
	perm := fmt.Sprintf("%04o", mode.Perm())
	// Copy first and create the folder only if the copy says it is missing:
	// every remote command costs a round trip and a shell start.
	err = s.copyTo(ctx, localPath, tmp, perm)
	if err != nil {
		if _, merr := s.Run(ctx, []string{"mkdir", "-p", "--", dir}, nil); merr != nil {
			return fmt.Errorf("upload to %s: create %s: %w (copy error: %v)", s.cfg.Node, dir, merr, err)
		}
		err = s.copyTo(ctx, localPath, tmp, perm)
	}
	if err != nil {
		_, _ = s.Run(context.WithoutCancel(ctx), []string{"rm", "-f", "--", tmp}, nil)
		return fmt.Errorf("upload %s to %s:%s: %w", localPath, s.cfg.Node, remotePath, err)
	}
	if _, err := s.Run(ctx, []string{"sh", "-c", verifyScript, "sh", tmp, sum, remotePath, perm}, nil); err != nil {
		return fmt.Errorf("upload %s to %s:%s: %w", localPath, s.cfg.Node, remotePath, err)
	}
	return nil
}

// copyTo copies a local file to remote path tmp with permissions perm.
func (s *SSH) copyTo(ctx context.Context, localPath, tmp, perm string) error {
	f, err := os.Open(localPath)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !scpSafe.MatchString(tmp) {
		// A path with characters scp would mangle: stream through cat instead.
		_, err = s.Run(ctx, []string{"sh", "-c", `cat > "$1"`, "sh", tmp}, f)
		return err
	}
	client, err := scp.NewClientBySSH(s.client)
	if err != nil {
		return err
	}
	return client.Copy(ctx, f, tmp, perm, fi.Size())
}

// Close closes the SSH connection.
func (s *SSH) Close() error { return s.client.Close() }

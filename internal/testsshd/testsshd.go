// Package testsshd starts real OpenSSH servers on loopback addresses for
// tests and benchmarks: one sshd per test "host", with a generated host key,
// a client key it accepts and a known_hosts file that lists it.
package testsshd

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Binary is the OpenSSH server that is started.
var Binary = "/usr/sbin/sshd"

// Keys is the client side shared by every test host: a key pair and a
// known_hosts file.
type Keys struct {
	Dir        string
	ClientKey  string // private key file (the .pub sits beside it)
	KnownHosts string
	User       string // the local user, who logs in
	mu         sync.Mutex
}

// NewKeys generates a client key and an empty known_hosts file in dir.
func NewKeys(dir string) (*Keys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key := filepath.Join(dir, "id_ed25519")
	if err := keygen(key, "rbee-test"); err != nil {
		return nil, err
	}
	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(known, nil, 0o600); err != nil {
		return nil, err
	}
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	return &Keys{Dir: dir, ClientKey: key, KnownHosts: known, User: u.Username}, nil
}

// NewKey generates another key pair in the keys' folder (one no host accepts).
func (k *Keys) NewKey(name string) (string, error) {
	p := filepath.Join(k.Dir, name)
	return p, keygen(p, name)
}

func keygen(path, comment string) error {
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path).CombinedOutput(); err != nil {
		return fmt.Errorf("ssh-keygen: %v: %s", err, out)
	}
	return nil
}

// FreePort returns a TCP port nothing listens on at host. It picks one
// below the kernel's ephemeral range when there is room: a port the kernel
// hands out for ":0" is also one it may give an outgoing connection as its
// source port, and a test that writes the port into a file and starts a
// server there later would find it taken by that connection.
func FreePort(host string) (int, error) {
	lo, hi := belowEphemeral()
	for range 64 {
		if hi <= lo {
			break
		}
		port := lo + rand.IntN(hi-lo)
		if ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port))); err == nil {
			ln.Close()
			return port, nil
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("address %s is not usable on this machine: %w", host, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// belowEphemeral is the range [lo, hi) of ports FreePort picks from: from
// 10000 up to the first port of the kernel's ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range); empty when that cannot be read
// or leaves no room.
func belowEphemeral() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0
	}
	first, err := strconv.Atoi(f[0])
	if err != nil {
		return 0, 0
	}
	return 10000, first
}

// Server is one running sshd.
type Server struct {
	Name string
	Addr string // listen address, e.g. 127.0.0.2
	Port int
	Log  *SyncBuffer // sshd's output (-e)
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs an sshd for host name on addr (a free port) with its files in
// dir, accepting the client key, and adds its host key to known_hosts.
func (k *Keys) Start(name, addr, dir string) (*Server, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, fmt.Errorf("sshd needs /run/sshd: %w", err)
	}
	port, err := FreePort(addr)
	if err != nil {
		return nil, err
	}
	hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
	if err := keygen(hostKey, name); err != nil {
		return nil, err
	}
	pub, err := os.ReadFile(k.ClientKey + ".pub")
	if err != nil {
		return nil, err
	}
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, pub, 0o600); err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "sshd_config")
	// SetEnv SHLVL=1: bash, the login shell of the test user, then does not
	// source ~/.bashrc for every remote command (as it does for ssh sessions
	// at level 1). A developer's rc file can cost hundreds of milliseconds
	// per command; a node's service account has none.
	conf := fmt.Sprintf(`Port %d
ListenAddress %s
HostKey %s
PidFile %s
AuthorizedKeysFile %s
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
MaxSessions 64
MaxStartups 64
LogLevel VERBOSE
Subsystem sftp internal-sftp
SetEnv SHLVL=1
`, port, addr, hostKey, filepath.Join(dir, "sshd.pid"), authorized)
	if err := os.WriteFile(config, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		return nil, err
	}
	fields := strings.Fields(string(hostPub))
	if err := k.addKnownHost(fmt.Sprintf("[%s]:%d %s %s\n", addr, port, fields[0], fields[1])); err != nil {
		return nil, err
	}
	s := &Server{Name: name, Addr: addr, Port: port, Log: &SyncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(Binary, "-D", "-e", "-f", config)
	s.cmd.Stdout, s.cmd.Stderr = s.Log, s.Log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Session processes (their own sessions) may keep the output pipe open.
	s.cmd.WaitDelay = time.Second
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	if err := s.waitListening(10 * time.Second); err != nil {
		return nil, err
	}
	return s, nil
}

// waitListening waits until the server accepts connections, for at most bound.
func (s *Server) waitListening(bound time.Duration) error {
	target := net.JoinHostPort(s.Addr, strconv.Itoa(s.Port))
	deadline := time.Now().Add(bound)
	for {
		select {
		case <-s.done:
			return fmt.Errorf("sshd for %s exited:\n%s", s.Name, s.Log.String())
		default:
		}
		c, err := net.DialTimeout("tcp", target, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("sshd for %s does not listen on %s: %v\n%s", s.Name, target, err, s.Log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (k *Keys) addKnownHost(line string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	f, err := os.OpenFile(k.KnownHosts, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(line)
	return err
}

// Stop ends the sshd and its session processes (SIGTERM, SIGKILL after 5 s).
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// SyncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ProcessesUnder lists processes whose executable lies in dir, with their command lines.
func ProcessesUnder(dir string) map[int]string {
	found := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	prefix := filepath.Clean(dir) + string(filepath.Separator)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || !strings.HasPrefix(strings.TrimSuffix(exe, " (deleted)"), prefix) {
			continue
		}
		if st, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); strings.Contains(string(st), ") Z ") {
			continue // a zombie runs nothing
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		found[pid] = strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return found
}

// StopProcessesUnder ends what runs from dir: SIGTERM, then SIGKILL after 10 s.
func StopProcessesUnder(dir string) {
	for pid := range ProcessesUnder(dir) {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(ProcessesUnder(dir)) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	for pid := range ProcessesUnder(dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

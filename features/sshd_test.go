package features

// A real OpenSSH server per test "host". Each host is an sshd bound to its own
// loopback address (127.0.0.2, 127.0.0.3, ...) with a generated host key,
// a private authorized_keys file and a known_hosts entry, so the SSH code path
// of apply runs exactly as it would against a remote machine.
//
// Steps:
//   an SSH host "n1" on 127.0.0.2            starts sshd; sets ${N1_HOST} ${N1_PORT}
//                                            ${N1_DIR} (an install dir of its own) and
//                                            ${N1_HIVE_PORT} (a free port on that address),
//                                            plus ${SSH_KEY} ${SSH_USER} ${KNOWN_HOSTS}
//   an unreachable SSH host "n2" on 127.0.0.3 the same variables, nothing listens
//   an SSH key that no host accepts           sets ${WRONG_KEY}
//   the SSH host "n1" is stopped              stops its sshd
//   no process runs from "${N1_DIR}"          nothing executes a file under that folder
//
// Every process whose executable lies in the scenario folder is stopped after
// the scenario, so hives that apply started detached do not outlive it.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cucumber/godog"
)

func init() { stepSets = append(stepSets, registerSSHSteps) }

// sshClientKey makes (once per scenario) the client key pair every test host
// accepts and an empty known_hosts file.
func (w *world) sshClientKey() error {
	if _, ok := w.vars["SSH_KEY"]; ok {
		return nil
	}
	dir := filepath.Join(w.dir, "ssh")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	key := filepath.Join(dir, "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rbee-test", "-f", key).CombinedOutput(); err != nil {
		return fmt.Errorf("ssh-keygen: %v: %s", err, out)
	}
	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(known, nil, 0o600); err != nil {
		return err
	}
	u, err := user.Current()
	if err != nil {
		return err
	}
	w.vars["SSH_KEY"] = key
	w.vars["KNOWN_HOSTS"] = known
	w.vars["SSH_USER"] = u.Username
	w.onCleanup(func() { stopProcessesUnder(w.dir) })
	return nil
}

// freePort returns a TCP port nothing listens on at host.
func freePort(host string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

var nonWord = regexp.MustCompile(`[^A-Za-z0-9]+`)

// hostVars sets ${<NAME>_HOST}, _PORT, _DIR and _HIVE_PORT for a test host.
func (w *world) hostVars(name, addr string) (prefix string, sshPort int, err error) {
	prefix = strings.ToUpper(nonWord.ReplaceAllString(name, "_"))
	if sshPort, err = freePort(addr); err != nil {
		return "", 0, fmt.Errorf("address %s is not usable on this machine: %w", addr, err)
	}
	hivePort, err := freePort(addr)
	if err != nil {
		return "", 0, err
	}
	if hivePort == sshPort {
		hivePort++
	}
	w.vars[prefix+"_HOST"] = addr
	w.vars[prefix+"_PORT"] = strconv.Itoa(sshPort)
	w.vars[prefix+"_HIVE_PORT"] = strconv.Itoa(hivePort)
	w.vars[prefix+"_DIR"] = filepath.Join(w.dir, "hosts", name)
	return prefix, sshPort, nil
}

func (w *world) startSSHHost(name, addr string) error {
	if err := w.sshClientKey(); err != nil {
		return err
	}
	_, port, err := w.hostVars(name, addr)
	if err != nil {
		return err
	}
	dir := filepath.Join(w.dir, "sshd", name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return fmt.Errorf("sshd needs /run/sshd: %w", err)
	}
	hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", hostKey).CombinedOutput(); err != nil {
		return fmt.Errorf("ssh-keygen: %v: %s", err, out)
	}
	pub, err := os.ReadFile(w.vars["SSH_KEY"] + ".pub")
	if err != nil {
		return err
	}
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, pub, 0o600); err != nil {
		return err
	}
	config := filepath.Join(dir, "sshd_config")
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
`, port, addr, hostKey, filepath.Join(dir, "sshd.pid"), authorized)
	if err := os.WriteFile(config, []byte(conf), 0o600); err != nil {
		return err
	}
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		return err
	}
	fields := strings.Fields(string(hostPub))
	entry := fmt.Sprintf("[%s]:%d %s %s\n", addr, port, fields[0], fields[1])
	f, err := os.OpenFile(w.vars["KNOWN_HOSTS"], os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(entry)
	f.Close()
	if err != nil {
		return err
	}
	p, err := w.startBackground("sshd-"+name, "exec /usr/sbin/sshd -D -e -f "+config)
	if err != nil {
		return err
	}
	target := net.JoinHostPort(addr, strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("sshd for %s exited:\n%s", name, p.out.String())
		default:
		}
		c, err := net.DialTimeout("tcp", target, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sshd for %s does not listen on %s: %v\n%s", name, target, err, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func registerSSHSteps(sc *godog.ScenarioContext, w *world) {
	sc.Step(`^an SSH host "([^"]*)" on ([0-9.]+)$`, w.startSSHHost)
	sc.Step(`^an unreachable SSH host "([^"]*)" on ([0-9.]+)$`, func(name, addr string) error {
		if err := w.sshClientKey(); err != nil {
			return err
		}
		_, _, err := w.hostVars(name, addr)
		return err
	})
	sc.Step(`^an SSH key that no host accepts$`, func() error {
		if err := w.sshClientKey(); err != nil {
			return err
		}
		key := filepath.Join(w.dir, "ssh", "id_wrong")
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
			return fmt.Errorf("ssh-keygen: %v: %s", err, out)
		}
		w.vars["WRONG_KEY"] = key
		return nil
	})
	sc.Step(`^the SSH host "([^"]*)" is stopped$`, func(name string) error {
		p, err := w.proc("sshd-" + name)
		if err != nil {
			return err
		}
		w.stopProc(p, 5*time.Second)
		return nil
	})
	sc.Step(`^no process runs from "([^"]*)"$`, func(dir string) error {
		dir = w.expand(dir)
		return eventually(15*time.Second, func() error {
			if pids := processesUnder(dir); len(pids) > 0 {
				return fmt.Errorf("processes still run from %s: %v", dir, pids)
			}
			return nil
		})
	})
	sc.Step(`^the folder "([^"]*)" does not exist$`, func(dir string) error {
		dir = w.expand(dir)
		if _, err := os.Stat(dir); err == nil {
			return fmt.Errorf("%s still exists", dir)
		}
		return nil
	})
}

// processesUnder lists processes whose executable lies in dir, with their command lines.
func processesUnder(dir string) map[int]string {
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
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		found[pid] = strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return found
}

// stopProcessesUnder ends what runs from dir: SIGTERM, then SIGKILL after 10 s.
func stopProcessesUnder(dir string) {
	pids := processesUnder(dir)
	for pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(processesUnder(dir)) > 0 && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	for pid := range processesUnder(dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

package hive

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// DefaultFirstWorkerPort is where worker ports start.
const DefaultFirstWorkerPort = 8001

// portPool hands out worker ports. A worker configured with a port gets
// exactly that one (claim); the others get the first port from first up that
// no worker of this hive holds or is configured with and that can be bound
// right now (allocate). Busy ports are skipped and logged.
type portPool struct {
	mu    sync.Mutex
	host  string
	first int
	used  map[int]string // port → id of the worker holding it now
	fixed map[int]string // port → id of the worker configured with it
	log   *slog.Logger
	// canBind reports whether host:port is free; tests replace it.
	canBind func(host string, port int) bool
}

func newPortPool(host string, first int, log *slog.Logger) *portPool {
	return &portPool{host: host, first: first, used: map[int]string{}, fixed: map[int]string{}, log: log, canBind: canBind}
}

func canBind(host string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// allocate reserves a port for worker id.
func (p *portPool) allocate(id string) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for port := p.first; port <= 65535; port++ {
		if _, taken := p.used[port]; taken {
			continue
		}
		if owner, ok := p.fixed[port]; ok && owner != id {
			continue
		}
		if !p.canBind(p.host, port) {
			p.log.Warn("worker port is busy; trying the next one", "port", port, "next", port+1, "worker", id)
			continue
		}
		p.used[port] = id
		return port, nil
	}
	return 0, fmt.Errorf("no free port from %d to 65535 on %s", p.first, p.host)
}

// fix records that worker id is configured with port (0: none), replacing
// what id was configured with before.
func (p *portPool) fix(id string, port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for q, owner := range p.fixed {
		if owner == id {
			delete(p.fixed, q)
		}
	}
	if port != 0 {
		p.fixed[port] = id
	}
}

// busy explains why worker id cannot have port, or returns "" when it can:
// another worker of this hive holds it or is configured with it, or another
// process listens on it. A port that id itself holds counts as free.
func (p *portPool) busy(id string, port int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if owner, ok := p.fixed[port]; ok && owner != id {
		return fmt.Sprintf("worker %s of this hive is configured with it; delete that worker or give the pools port ranges that do not overlap", owner)
	}
	if owner, ok := p.used[port]; ok {
		if owner == id {
			return ""
		}
		return fmt.Sprintf("worker %s of this hive holds it (the hive picked it); replace that worker to move it, or choose another port", owner)
	}
	if !p.canBind(p.host, port) {
		who := "a process this hive cannot identify (find it with `ss -ltnp 'sport = :" + strconv.Itoa(port) + "'`)"
		if owner := portOwner(port); owner != "" {
			who = owner
		}
		return fmt.Sprintf("%s listens on it on %s; ask whoever runs it to free the port, or set another port on the pool", who, p.host)
	}
	return ""
}

// claim reserves exactly port for worker id.
func (p *portPool) claim(id string, port int) error {
	if why := p.busy(id, port); why != "" {
		return fmt.Errorf("port %d is in use: %s", port, why)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if owner, ok := p.used[port]; ok && owner != id {
		return fmt.Errorf("port %d is in use: worker %s of this hive holds it", port, owner)
	}
	p.used[port] = id
	return nil
}

// release returns a port to the pool.
func (p *portPool) release(port int) {
	p.mu.Lock()
	delete(p.used, port)
	p.mu.Unlock()
}

// portOwner names the process listening on TCP port ("pid 1234 (nginx)")
// from /proc; "" when it cannot tell (not Linux, or another user's process).
func portOwner(port int) string {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, _ := strings.Cut(fs[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 32); err == nil && int(p) == port {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return ""
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, proc := range procs {
		fds, err := os.ReadDir(filepath.Join(proc, "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if link, err := os.Readlink(filepath.Join(proc, "fd", fd.Name())); err == nil && inodes[link] {
				comm, _ := os.ReadFile(filepath.Join(proc, "comm"))
				return fmt.Sprintf("pid %s (%s)", filepath.Base(proc), strings.TrimSpace(string(comm)))
			}
		}
	}
	return ""
}

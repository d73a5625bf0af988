package hive

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
)

// DefaultFirstWorkerPort is where worker ports start.
const DefaultFirstWorkerPort = 8001

// portPool hands out worker ports: the first port from first up that no
// worker of this hive holds and that can be bound right now. Busy ports are
// skipped and logged.
type portPool struct {
	mu    sync.Mutex
	host  string
	first int
	used  map[int]string // port → worker id
	log   *slog.Logger
	// canBind reports whether host:port is free; tests replace it.
	canBind func(host string, port int) bool
}

func newPortPool(host string, first int, log *slog.Logger) *portPool {
	return &portPool{host: host, first: first, used: map[int]string{}, log: log, canBind: canBind}
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
		if !p.canBind(p.host, port) {
			p.log.Warn("worker port is busy; trying the next one", "port", port, "next", port+1, "worker", id)
			continue
		}
		p.used[port] = id
		return port, nil
	}
	return 0, fmt.Errorf("no free port from %d to 65535 on %s", p.first, p.host)
}

// release returns a port to the pool.
func (p *portPool) release(port int) {
	p.mu.Lock()
	delete(p.used, port)
	p.mu.Unlock()
}

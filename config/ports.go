package config

import (
	"fmt"
	"net"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/rbee-dev/rbee/api"
)

// machine names the computer a node runs on, for port conflict messages:
// every local node and every SSH node pointed at a loopback address share
// "this machine".
func machine(n *Node) string {
	if n.Connection == ConnectionLocal || api.IsLoopback(n.Host) {
		return "this machine (" + bindAddr(n) + ")"
	}
	return strings.ToLower(n.Host)
}

// bindAddr is the address a node's hive and workers bind: 127.0.0.1 for a
// local node, the node's host otherwise (the hive listens on the address it
// is reached at). Two uses of a port conflict only on the same bind address:
// a local node and an SSH node at 127.0.0.9 both run a hive on 9200.
func bindAddr(n *Node) string {
	if n.Connection == ConnectionLocal || strings.EqualFold(n.Host, "localhost") {
		return "127.0.0.1"
	}
	if ip := net.ParseIP(n.Host); ip != nil {
		return ip.String()
	}
	return strings.ToLower(n.Host)
}

type portUse struct {
	what string
	at   hcl.Range
}

func (v *validator) ports() {
	used := map[string]map[int]portUse{} // bind address → port → user
	claim := func(m string, port int, what string, at hcl.Range) (portUse, bool) {
		if used[m] == nil {
			used[m] = map[int]portUse{}
		}
		if prev, ok := used[m][port]; ok {
			return prev, false
		}
		used[m][port] = portUse{what, at}
		return portUse{}, true
	}
	for _, n := range v.cfg.Nodes {
		if n.Connection == "" || v.cfg.Node(n.Name) != n {
			continue
		}
		if prev, ok := claim(bindAddr(n), n.HivePort, fmt.Sprintf("hive_port of node %q", n.Name), n.Range("hive_port")); !ok {
			v.errorf(n.Range("hive_port"), "Conflicting ports", "hive_port %d of node %q is already used by the %s (%s) on %s; give each node on one machine its own hive_port.", n.HivePort, n.Name, prev.what, prev.at, machine(n))
		}
	}
	for _, p := range v.cfg.Pools {
		if p.Port == 0 || v.cfg.Pool(p.Name) != p {
			continue
		}
		for _, nn := range p.Nodes {
			n := v.cfg.Node(nn)
			if n == nil || n.Connection == "" {
				continue
			}
			for i := 0; i < p.Replicas; i++ {
				port := p.Port + i
				if prev, ok := claim(bindAddr(n), port, fmt.Sprintf("worker %d of pool %q on node %q", i, p.Name, nn), p.Range("port")); !ok {
					v.errorf(p.Range("port"), "Conflicting ports", "pool %q puts worker %d on node %q at port %d, which is already used by the %s (%s) on %s; choose a port range that overlaps no other pool or hive_port.", p.Name, i, nn, port, prev.what, prev.at, machine(n))
					break
				}
			}
		}
	}
}

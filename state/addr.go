package state

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Kind is the type of a resource rbee manages.
type Kind string

// The resource kinds.
const (
	KindNode   Kind = "node"   // a hive on a machine
	KindModel  Kind = "model"  // a model file on a node
	KindWorker Kind = "worker" // one llama.cpp worker of a pool on a node
)

// Addr names one resource: node.gpu1, model.tinyllama@gpu1, worker.chat[gpu1/0].
// It is comparable and is used as a map key.
type Addr struct {
	Kind  Kind
	Node  string // every kind
	Model string // KindModel
	Pool  string // KindWorker
	Index int    // KindWorker: 0 .. replicas-1
}

// NodeAddr is the address of node name.
func NodeAddr(node string) Addr { return Addr{Kind: KindNode, Node: node} }

// ModelAddr is the address of model on node.
func ModelAddr(node, model string) Addr { return Addr{Kind: KindModel, Node: node, Model: model} }

// WorkerAddr is the address of worker index of pool on node.
func WorkerAddr(pool, node string, index int) Addr {
	return Addr{Kind: KindWorker, Pool: pool, Node: node, Index: index}
}

// String renders the address as users type it.
func (a Addr) String() string {
	switch a.Kind {
	case KindNode:
		return "node." + a.Node
	case KindModel:
		return "model." + a.Model + "@" + a.Node
	case KindWorker:
		return fmt.Sprintf("worker.%s[%s/%d]", a.Pool, a.Node, a.Index)
	}
	return "invalid"
}

// MarshalText renders the address as text (JSON strings, map keys).
func (a Addr) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText parses an address rendered by MarshalText.
func (a *Addr) UnmarshalText(b []byte) error {
	p, err := ParseAddr(string(b))
	if err != nil {
		return err
	}
	*a = p
	return nil
}

// key is the Pebble key of the record at a.
func (a Addr) key() []byte {
	switch a.Kind {
	case KindNode:
		return []byte("node/" + a.Node)
	case KindModel:
		return []byte("model/" + a.Node + "/" + a.Model)
	case KindWorker:
		return []byte(fmt.Sprintf("worker/%s/%s/%d", a.Pool, a.Node, a.Index))
	}
	return nil
}

// Less orders addresses: nodes, then models, then workers, each by name.
func (a Addr) Less(b Addr) bool {
	if a.Kind != b.Kind {
		return kindOrder(a.Kind) < kindOrder(b.Kind)
	}
	switch a.Kind {
	case KindModel:
		if a.Model != b.Model {
			return a.Model < b.Model
		}
	case KindWorker:
		if a.Pool != b.Pool {
			return a.Pool < b.Pool
		}
		if a.Node != b.Node {
			return a.Node < b.Node
		}
		return a.Index < b.Index
	}
	return a.Node < b.Node
}

func kindOrder(k Kind) int {
	switch k {
	case KindNode:
		return 0
	case KindModel:
		return 1
	}
	return 2
}

var (
	nameRe   = `[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?`
	nodeRe   = regexp.MustCompile(`^node\.(` + nameRe + `)$`)
	modelRe  = regexp.MustCompile(`^model\.(` + nameRe + `)@(` + nameRe + `)$`)
	workerRe = regexp.MustCompile(`^worker\.(` + nameRe + `)\[(` + nameRe + `)/([0-9]{1,4})\]$`)
)

// ParseAddr parses node.N, model.M@N or worker.P[N/i].
func ParseAddr(s string) (Addr, error) {
	if m := nodeRe.FindStringSubmatch(s); m != nil {
		return NodeAddr(m[1]), nil
	}
	if m := modelRe.FindStringSubmatch(s); m != nil {
		return ModelAddr(m[3], m[1]), nil
	}
	if m := workerRe.FindStringSubmatch(s); m != nil {
		i, _ := strconv.Atoi(m[5])
		return WorkerAddr(m[1], m[3], i), nil
	}
	return Addr{}, fmt.Errorf("%q is not a resource address; use node.NAME, model.NAME@NODE or worker.POOL[NODE/INDEX] (see rbee state list)", strings.TrimSpace(s))
}

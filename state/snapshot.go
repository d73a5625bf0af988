package state

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
)

// Snapshot is every record at one serial: what planning compares the
// configuration against. A snapshot of a state that does not exist yet is
// empty, with Lineage "" and Serial 0.
type Snapshot struct {
	Lineage string
	Serial  uint64
	Nodes   map[Addr]*NodeRecord
	Models  map[Addr]*ModelRecord
	Workers map[Addr]*WorkerRecord
}

// NewSnapshot returns an empty snapshot.
func NewSnapshot() *Snapshot {
	return &Snapshot{Nodes: map[Addr]*NodeRecord{}, Models: map[Addr]*ModelRecord{}, Workers: map[Addr]*WorkerRecord{}}
}

// Node returns the record of node name, or nil.
func (s *Snapshot) Node(name string) *NodeRecord { return s.Nodes[NodeAddr(name)] }

// Model returns the record of model on node, or nil.
func (s *Snapshot) Model(node, model string) *ModelRecord { return s.Models[ModelAddr(node, model)] }

// Worker returns the record of a worker, or nil.
func (s *Snapshot) Worker(pool, node string, index int) *WorkerRecord {
	return s.Workers[WorkerAddr(pool, node, index)]
}

// Get returns the record at a (a *NodeRecord, *ModelRecord or *WorkerRecord).
func (s *Snapshot) Get(a Addr) (Record, bool) {
	switch a.Kind {
	case KindNode:
		if r, ok := s.Nodes[a]; ok {
			return r, true
		}
	case KindModel:
		if r, ok := s.Models[a]; ok {
			return r, true
		}
	case KindWorker:
		if r, ok := s.Workers[a]; ok {
			return r, true
		}
	}
	return nil, false
}

// Put adds or replaces a record (a NodeRecord, ModelRecord or WorkerRecord, or a pointer to one).
func (s *Snapshot) Put(r Record) {
	switch r := r.(type) {
	case NodeRecord:
		s.Nodes[r.Addr()] = &r
	case *NodeRecord:
		c := *r
		s.Nodes[r.Addr()] = &c
	case ModelRecord:
		s.Models[r.Addr()] = &r
	case *ModelRecord:
		c := *r
		s.Models[r.Addr()] = &c
	case WorkerRecord:
		s.Workers[r.Addr()] = &r
	case *WorkerRecord:
		c := *r
		s.Workers[r.Addr()] = &c
	}
}

// Delete removes the record at a.
func (s *Snapshot) Delete(a Addr) {
	delete(s.Nodes, a)
	delete(s.Models, a)
	delete(s.Workers, a)
}

// Len is the number of records.
func (s *Snapshot) Len() int { return len(s.Nodes) + len(s.Models) + len(s.Workers) }

// Addrs lists every address, nodes first, sorted.
func (s *Snapshot) Addrs() []Addr {
	out := make([]Addr, 0, s.Len())
	for a := range s.Nodes {
		out = append(out, a)
	}
	for a := range s.Models {
		out = append(out, a)
	}
	for a := range s.Workers {
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y Addr) int {
		if x.Less(y) {
			return -1
		}
		if y.Less(x) {
			return 1
		}
		return 0
	})
	return out
}

// Clone returns a deep copy that can be changed freely (a refresher's output).
func (s *Snapshot) Clone() *Snapshot {
	c := &Snapshot{Lineage: s.Lineage, Serial: s.Serial,
		Nodes: make(map[Addr]*NodeRecord, len(s.Nodes)), Models: make(map[Addr]*ModelRecord, len(s.Models)), Workers: make(map[Addr]*WorkerRecord, len(s.Workers))}
	for a, r := range s.Nodes {
		n := *r
		n.Env, n.EnvDigest = maps.Clone(r.Env), maps.Clone(r.EnvDigest)
		n.Warnings = slices.Clone(r.Warnings)
		c.Nodes[a] = &n
	}
	for a, r := range s.Models {
		m := *r
		c.Models[a] = &m
	}
	for a, r := range s.Workers {
		w := *r
		c.Workers[a] = &w
	}
	return c
}

type snapshotJSON struct {
	Lineage string          `json:"lineage"`
	Serial  uint64          `json:"serial"`
	Nodes   []*NodeRecord   `json:"nodes"`
	Models  []*ModelRecord  `json:"models"`
	Workers []*WorkerRecord `json:"workers"`
}

// MarshalJSON writes the snapshot as sorted lists of records.
func (s *Snapshot) MarshalJSON() ([]byte, error) {
	out := snapshotJSON{Lineage: s.Lineage, Serial: s.Serial, Nodes: []*NodeRecord{}, Models: []*ModelRecord{}, Workers: []*WorkerRecord{}}
	for _, a := range s.Addrs() {
		switch a.Kind {
		case KindNode:
			out.Nodes = append(out.Nodes, s.Nodes[a])
		case KindModel:
			out.Models = append(out.Models, s.Models[a])
		case KindWorker:
			out.Workers = append(out.Workers, s.Workers[a])
		}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (s *Snapshot) UnmarshalJSON(b []byte) error {
	var in snapshotJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*s = *NewSnapshot()
	s.Lineage, s.Serial = in.Lineage, in.Serial
	for _, r := range in.Nodes {
		s.Put(r)
	}
	for _, r := range in.Models {
		s.Put(r)
	}
	for _, r := range in.Workers {
		s.Put(r)
	}
	return nil
}

// Reader is what reads a state: the Pebble Store here, or another backend
// (etcd). Readers of the fleet (infer, the gateway) need nothing more.
type Reader interface {
	Dir() string // the local state folder (hive tokens of a Pebble state are kept there)
	Snapshot(ctx context.Context) (*Snapshot, error)
}

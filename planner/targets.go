package planner

import (
	"fmt"
	"strings"

	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/state"
)

// target is one parsed -target: an exact address, or pool.P / model.M matching many.
type target struct {
	exact *state.Addr
	kind  state.Kind
	name  string
}

func parseTarget(s string) (target, error) {
	if a, err := state.ParseAddr(s); err == nil {
		return target{exact: &a}, nil
	}
	if name, ok := strings.CutPrefix(s, "pool."); ok && config.CheckName(name) == nil {
		return target{kind: state.KindWorker, name: name}, nil
	}
	if name, ok := strings.CutPrefix(s, "model."); ok && config.CheckName(name) == nil {
		return target{kind: state.KindModel, name: name}, nil
	}
	return target{}, fmt.Errorf("-target %q is not an address; use node.NAME, model.NAME, model.NAME@NODE, pool.NAME or worker.POOL[NODE/INDEX]", s)
}

// MatchTarget reports whether addr is selected by the -target value t:
// node.N selects everything on node N, pool.P every worker of P, model.M every
// copy of M, and a full address selects itself.
func MatchTarget(t string, addr state.Addr) bool {
	tg, err := parseTarget(t)
	if err != nil {
		return false
	}
	return tg.match(addr)
}

func (t target) match(a state.Addr) bool {
	if t.exact != nil {
		if t.exact.Kind == state.KindNode {
			return a.Node == t.exact.Node
		}
		return a == *t.exact
	}
	switch t.kind {
	case state.KindWorker:
		return a.Kind == state.KindWorker && a.Pool == t.name
	case state.KindModel:
		return a.Kind == state.KindModel && a.Model == t.name
	}
	return false
}

// filterTargets keeps the changes selected by the targets plus everything
// they depend on, and returns the targets that selected nothing.
func filterTargets(changes []*Change, targets []string) ([]*Change, []string) {
	byAddr := map[state.Addr]*Change{}
	for _, c := range changes {
		byAddr[c.Addr] = c
	}
	keep := map[state.Addr]bool{}
	var visit func(a state.Addr)
	visit = func(a state.Addr) {
		if keep[a] {
			return
		}
		keep[a] = true
		if c, ok := byAddr[a]; ok {
			for _, d := range c.DependsOn {
				visit(d)
			}
		}
	}
	var unmatched []string
	for _, t := range targets {
		tg, _ := parseTarget(t)
		hit := false
		for _, c := range changes {
			if tg.match(c.Addr) {
				visit(c.Addr)
				hit = true
			}
		}
		if !hit {
			unmatched = append(unmatched, t)
		}
	}
	out := changes[:0:0]
	for _, c := range changes {
		if keep[c.Addr] {
			out = append(out, c)
		}
	}
	return out, unmatched
}

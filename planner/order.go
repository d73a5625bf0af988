package planner

import (
	"fmt"
	"slices"

	"github.com/rbee-dev/rbee/state"
)

// cascade replaces what sits on a replaced resource: models and workers on a
// replaced node, workers of a replaced model, workers on a node whose env changed.
func (d *differ) cascade() {
	replacedNode := map[string]bool{}
	envChanged := map[string]bool{}
	for _, c := range d.changes {
		if c.Addr.Kind != state.KindNode {
			continue
		}
		if c.Action == Replace {
			replacedNode[c.Addr.Node] = true
		}
		if c.Action == Update && c.Before != nil && c.After != nil && envDiffers(c.Before.(*state.NodeRecord), c.After.(*state.NodeRecord)) {
			envChanged[c.Addr.Node] = true
		}
	}
	bump := func(a state.Addr, reason string) {
		var before, after state.Record
		if r, ok := d.have.Get(a); ok {
			before = r
		} else {
			return // not running: nothing to replace
		}
		if r, ok := d.want.Get(a); ok {
			after = r
		} else {
			return // being deleted anyway
		}
		if d.cascaded == nil {
			d.cascaded = map[state.Addr]bool{}
		}
		d.cascaded[a] = true
		if c, ok := d.changes[a]; ok {
			if c.Action == Create || c.Action == Update {
				c.Action = Replace
			}
			if c.Action == Replace {
				c.Reasons = append(c.Reasons, reason)
			}
			return
		}
		d.changes[a] = &Change{Addr: a, Action: Replace, Before: before, After: after, Reasons: []string{reason}}
	}
	if len(replacedNode) > 0 {
		for a, m := range d.want.Models {
			if replacedNode[m.Node] {
				bump(a, fmt.Sprintf("node.%s is replaced", m.Node))
			}
		}
	}
	replacedModel := map[state.Addr]bool{}
	for a, c := range d.changes {
		if a.Kind == state.KindModel && c.Action == Replace {
			replacedModel[a] = true
		}
	}
	if len(replacedNode) == 0 && len(replacedModel) == 0 && len(envChanged) == 0 {
		return
	}
	for a, w := range d.want.Workers {
		switch {
		case replacedNode[w.Node]:
			bump(a, fmt.Sprintf("node.%s is replaced", w.Node))
		case replacedModel[state.ModelAddr(w.Node, w.Model)]:
			bump(a, fmt.Sprintf("model.%s@%s is replaced", w.Model, w.Node))
		case envChanged[w.Node]:
			bump(a, fmt.Sprintf("env of node.%s changed", w.Node))
		}
	}
}

// createBeforeDestroy marks the replacements of serving workers whose port
// the hive picks: the new worker starts under the other of its two ids and
// is ready before the old one drains and stops, so a replica never stops
// serving. A worker replaced because its node or model is, one with a fixed
// port (two cannot share it) and one that is not serving anyway are
// replaced in place.
func (d *differ) createBeforeDestroy() {
	for a, c := range d.changes {
		if a.Kind != state.KindWorker || c.Action != Replace || d.cascaded[a] {
			continue
		}
		before, _ := c.Before.(*state.WorkerRecord)
		after, _ := c.After.(*state.WorkerRecord)
		if before == nil || after == nil || after.Port != 0 || !serving(before.State) {
			continue
		}
		next := *after
		next.ID = AlternateWorkerID(before)
		c.After, c.CreateBeforeDestroy = &next, true
	}
}

// serving reports whether a worker in state s answers requests (or is
// about to).
func serving(s state.WorkerState) bool {
	return s == state.WorkerIdle || s == state.WorkerBusy || s == state.WorkerLoading
}

// AlternateWorkerID is the id a create-before-destroy replacement of w
// runs under: WorkerID's, or that with "-b" when w runs under WorkerID's.
func AlternateWorkerID(w *state.WorkerRecord) string {
	base := WorkerID(w.Pool, w.Index)
	if RecordedWorkerID(w) == base {
		return base + "-b"
	}
	return base
}

// rolling makes the replacements of one pool's workers run one at a time
// (in address order), so a pool with several replicas never has more than
// one of them out of service.
func rolling(changes []*Change) {
	last := map[string]*Change{} // pool → its previous replacement
	for _, c := range changes {  // sorted by address
		if c.Addr.Kind != state.KindWorker || c.Action != Replace {
			continue
		}
		if prev := last[c.Addr.Pool]; prev != nil && !slices.Contains(c.DependsOn, prev.Addr) {
			c.DependsOn = append(c.DependsOn, prev.Addr)
			slices.SortFunc(c.DependsOn, compareAddr)
		}
		last[c.Addr.Pool] = c
	}
}

// link fills DependsOn: on one node the hive comes before its models and a
// model before the workers that use it; deletions go the other way (workers,
// then models, then the hive). Only changes in the plan are listed.
func link(changes []*Change) {
	byAddr := make(map[state.Addr]*Change, len(changes))
	// per node: the worker changes that remove a worker (delete or replace), by model
	removals := map[string][]*Change{}
	for _, c := range changes {
		byAddr[c.Addr] = c
		if c.Addr.Kind != state.KindNode && (c.Action == Delete || c.Action == Replace) {
			removals[c.Addr.Node] = append(removals[c.Addr.Node], c)
		}
	}
	dep := func(c *Change, a state.Addr) {
		if d, ok := byAddr[a]; ok && d != c && !slices.Contains(c.DependsOn, a) {
			c.DependsOn = append(c.DependsOn, d.Addr)
		}
	}
	for _, c := range changes {
		node := state.NodeAddr(c.Addr.Node)
		switch {
		case c.Action == Delete && c.Addr.Kind == state.KindNode:
			for _, r := range removals[c.Addr.Node] {
				dep(c, r.Addr)
			}
		case c.Action == Delete && c.Addr.Kind == state.KindModel:
			for _, r := range removals[c.Addr.Node] {
				if r.Addr.Kind == state.KindWorker && r.Before != nil && r.Before.(*state.WorkerRecord).Model == c.Addr.Model {
					dep(c, r.Addr)
				}
			}
		case c.Action == Delete:
			// a worker deletion waits for nothing
		case c.Addr.Kind == state.KindModel:
			dep(c, node)
		case c.Addr.Kind == state.KindWorker:
			dep(c, node)
			if w, ok := c.After.(*state.WorkerRecord); ok {
				dep(c, state.ModelAddr(c.Addr.Node, w.Model))
			}
			// a worker taking a removed worker's port waits for that removal
			if w, ok := c.After.(*state.WorkerRecord); ok && w.Port != 0 {
				for _, r := range removals[c.Addr.Node] {
					if b, ok := r.Before.(*state.WorkerRecord); ok && r.Action == Delete && b.Port == w.Port {
						dep(c, r.Addr)
					}
				}
			}
		}
		slices.SortFunc(c.DependsOn, compareAddr)
	}
}

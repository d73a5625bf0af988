// Package fit checks, before anything changes, that the workers a
// configuration puts on each node fit in its memory, and bounds how fast
// each pool can decode: memory bandwidth ÷ the bytes read per token. It
// reads every model's GGUF metadata from the hive's catalog when the file is
// there, otherwise from the file's header at its source.
package fit

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/gguf"
)

// Input is what a check needs: the configuration, what each node's hive
// reports (a node missing from Hives has no hive yet), and a header reader
// for models no hive has yet.
type Input struct {
	Config  *config.Config
	Hives   map[string]*hiveapi.State
	Headers *Headers // nil: a new one
}

// Report is the outcome: a line per node and per pool, warnings, and the
// problems that make the plan fail.
type Report struct {
	Lines    []string
	Warnings []string
	Problems []string
}

// Err is the error that fails the plan, or nil when everything fits.
func (r *Report) Err() error {
	if len(r.Problems) == 0 {
		return nil
	}
	return fmt.Errorf("the configuration does not fit on its nodes; nothing was changed:\n  %s", strings.Join(r.Problems, "\n  "))
}

// worker is the estimate of one pool's workers on one node.
type worker struct {
	pool *config.Pool
	meta gguf.Metadata
	mem  gguf.Memory
}

// Check runs the check.
func Check(ctx context.Context, in Input) *Report {
	if in.Headers == nil {
		in.Headers = &Headers{}
	}
	r := &Report{}
	c := in.Config
	metas := map[string]gguf.Metadata{} // node/model → metadata
	for _, n := range c.Nodes {
		live := in.Hives[n.Name]
		var ws []worker
		unknown := false
		for _, p := range c.Pools {
			if !contains(p.Nodes, n.Name) || c.Model(p.Model) == nil {
				continue
			}
			meta, err := modelMetadata(ctx, in, c.Model(p.Model), n, live, metas)
			if err != nil {
				r.Warnings = append(r.Warnings, fmt.Sprintf("pool.%s on node.%s: the memory of model.%s is unknown until its hive has it (%v)", p.Name, n.Name, p.Model, err))
				unknown = true
				continue
			}
			mem, err := meta.Estimate(workload(p))
			if err != nil {
				r.Problems = append(r.Problems, fmt.Sprintf("pool.%s: %v", p.Name, err))
				continue
			}
			ws = append(ws, worker{pool: p, meta: meta, mem: mem})
		}
		if len(ws) == 0 && !unknown {
			continue
		}
		r.node(n, live, ws)
	}
	r.speeds(in, metas)
	r.Warnings = append(r.Warnings, contextWarnings(c, metas)...)
	sort.Strings(r.Warnings)
	r.Warnings = compact(r.Warnings)
	return r
}

// modelMetadata is the model's metadata on node n: the hive's catalog
// entry, else any node's, else the header at its source.
func modelMetadata(ctx context.Context, in Input, m *config.Model, n *config.Node, live *hiveapi.State, metas map[string]gguf.Metadata) (gguf.Metadata, error) {
	if meta, ok := catalogued(live, m); ok {
		metas[m.Name] = meta
		return meta, nil
	}
	if meta, ok := metas[m.Name]; ok {
		return meta, nil
	}
	for _, st := range in.Hives {
		if meta, ok := catalogued(st, m); ok {
			metas[m.Name] = meta
			return meta, nil
		}
	}
	meta, err := in.Headers.Metadata(ctx, m, n)
	if err == nil {
		metas[m.Name] = meta
	}
	return meta, err
}

func catalogued(st *hiveapi.State, m *config.Model) (gguf.Metadata, bool) {
	if st == nil {
		return gguf.Metadata{}, false
	}
	for _, cm := range st.Models {
		if cm.Name == m.Name && cm.Metadata != nil && (m.SHA256 == "" || m.SHA256 == cm.SHA256) {
			return *cm.Metadata, true
		}
	}
	return gguf.Metadata{}, false
}

func workload(p *config.Pool) gguf.Workload {
	return gguf.Workload{CtxSize: p.CtxSize, Slots: p.Slots, KVCacheType: p.KVCacheType, FlashAttn: p.FlashAttn, Embeddings: p.Embeddings}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func compact(xs []string) []string {
	out := xs[:0]
	for i, x := range xs {
		if i == 0 || x != xs[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// contextWarnings flags a ctx_size above the model's trained context.
func contextWarnings(c *config.Config, metas map[string]gguf.Metadata) []string {
	var out []string
	for _, p := range c.Pools {
		meta, ok := metas[p.Model]
		if ok && meta.ContextLength > 0 && p.CtxSize > meta.ContextLength {
			out = append(out, fmt.Sprintf("pool.%s: ctx_size %d is above the %d tokens model.%s was trained on; output past %d tokens degrades (lower ctx_size, or use a model trained on a longer context)",
				p.Name, p.CtxSize, meta.ContextLength, p.Model, meta.ContextLength))
		}
	}
	return out
}

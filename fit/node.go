package fit

import (
	"fmt"
	"math"
	"strings"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/gguf"
)

// memory is one pool of memory on a node: its RAM or one GPU's VRAM.
type memory struct {
	name        string // "RAM", "cuda 0 VRAM"
	total, free int64
	gpu         bool
}

// node adds the lines and problems of node n.
func (r *Report) node(n *config.Node, live *hiveapi.State, ws []worker) {
	count := 0
	for _, w := range ws {
		count += w.pool.Replicas
	}
	if live == nil {
		r.Lines = append(r.Lines, fmt.Sprintf("node.%s: memory unknown until the hive is installed (%d workers need about %s); apply's preflight decides",
			n.Name, count, gib(need(ws, false))))
		return
	}
	groups := map[memory][]worker{}
	var order []memory
	for _, w := range ws {
		m, ok := memoryOf(live.Resources, w.pool)
		if !ok {
			continue // preflight names the missing backend or device
		}
		if _, seen := groups[m]; !seen {
			order = append(order, m)
		}
		groups[m] = append(groups[m], w)
	}
	for _, m := range order {
		ws := groups[m]
		have := m.free + running(live, ws, m.gpu)
		total := need(ws, m.gpu)
		used := m.total - have + total
		workers := 0
		for _, w := range ws {
			workers += w.pool.Replicas
		}
		r.Lines = append(r.Lines, fmt.Sprintf("node.%s: %s %s of %s after apply (%d workers)", n.Name, m.name, gibNum(used), gib(m.total), workers))
		if m.free > 0 && total > have {
			r.Problems = append(r.Problems, fmt.Sprintf("node.%s: the workers need %s of %s but %s is available (%s); %s",
				n.Name, gib(total), m.name, gib(have), breakdown(ws), suggest(ws, have, m.gpu)))
		}
	}
}

// memoryOf is the memory pool p's workers use on a node with res.
func memoryOf(res hiveapi.Resources, p *config.Pool) (memory, bool) {
	if p.Backend == "" || p.Backend == hiveapi.BackendCPU {
		return memory{name: "RAM", total: res.RAMTotal, free: res.RAMAvailable}, true
	}
	for _, g := range res.GPUs {
		if g.Backend == p.Backend && g.Index == p.Device {
			return memory{name: fmt.Sprintf("%s %d VRAM", g.Backend, g.Index), total: g.VRAMTotal, free: g.VRAMFree, gpu: true}, true
		}
	}
	return memory{}, false
}

// need adds up the workers' memory. On the CPU the weights are mapped from
// the file, so the workers of one model share them, except what each holds
// alone (private).
func need(ws []worker, gpu bool) int64 {
	var total int64
	seen := map[string]bool{}
	for _, w := range ws {
		own := private(w.meta, w.mem, gpu)
		total += int64(w.pool.Replicas) * (w.mem.Total - w.mem.Weights + own)
		if shared := w.mem.Weights - own; shared > 0 && !seen[w.pool.Model] {
			seen[w.pool.Model] = true
			total += shared
		}
	}
	return total
}

// private is the part of the weights a worker holds alone: on a GPU all of
// them, on the CPU the matrices the CPU backend repacks at load
// (Metadata.RepackBytes).
func private(meta gguf.Metadata, mem gguf.Memory, gpu bool) int64 {
	if gpu {
		return mem.Weights
	}
	return min(meta.RepackBytes, mem.Weights)
}

// running is the memory that this node's running workers of these pools
// hold alone now, estimated from the configuration they run with: it is
// free again once apply replaces them.
func running(live *hiveapi.State, ws []worker, gpu bool) int64 {
	var n int64
	for _, st := range live.Workers {
		for _, w := range ws {
			if st.Pool != w.pool.Name || st.PID <= 0 {
				continue
			}
			c := st.Config
			mem, err := w.meta.Estimate(gguf.Workload{CtxSize: c.CtxSize, Slots: c.Slots, FlashAttn: c.FlashAttn, KVCacheType: w.pool.KVCacheType})
			if err == nil {
				n += mem.Total - mem.Weights + private(w.meta, mem, gpu)
			}
		}
	}
	return n
}

func breakdown(ws []worker) string {
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = fmt.Sprintf("pool.%s: %d × (weights %s + KV cache %s for %d slots × %d ctx at %s + compute %s)",
			w.pool.Name, w.pool.Replicas, gib(w.mem.Weights), gib(w.mem.KVCache), w.pool.Slots, w.pool.CtxSize,
			kvType(w.pool), gib(w.mem.Compute+w.mem.Output))
	}
	return strings.Join(parts, ", ")
}

func kvType(p *config.Pool) string {
	if p.KVCacheType == "" {
		return "f16"
	}
	return p.KVCacheType
}

// suggest says what would fit, changing the largest pool alone: fewer
// slots, a smaller ctx_size, or weights small enough (a smaller quantization).
func suggest(ws []worker, have int64, gpu bool) string {
	big := 0
	for i, w := range ws {
		if w.mem.Total*int64(w.pool.Replicas) > ws[big].mem.Total*int64(ws[big].pool.Replicas) {
			big = i
		}
	}
	b := ws[big]
	try := func(p config.Pool) bool {
		alt := append([]worker(nil), ws...)
		mem, err := b.meta.Estimate(workload(&p))
		if err != nil {
			return false
		}
		alt[big] = worker{pool: &p, meta: b.meta, mem: mem}
		return need(alt, gpu) <= have
	}
	var ideas []string
	for s := b.pool.Slots - 1; s >= 1; s-- {
		p := *b.pool
		p.Slots = s
		if try(p) {
			ideas = append(ideas, fmt.Sprintf("slots = %d", s))
			break
		}
	}
	for c := b.pool.CtxSize / 2; c >= 64; c /= 2 {
		p := *b.pool
		p.CtxSize = c
		if try(p) {
			ideas = append(ideas, fmt.Sprintf("ctx_size = %d", c))
			break
		}
	}
	over := need(ws, gpu) - have
	copies := int64(1)
	if gpu {
		copies = int64(b.pool.Replicas)
	}
	if w := b.mem.Weights - (over+copies-1)/copies; w > 0 {
		ideas = append(ideas, fmt.Sprintf("a smaller quantization of model.%s (weights under %s, now %s)", b.pool.Model, gib(w), gib(b.mem.Weights)))
	}
	if len(ideas) == 0 {
		return fmt.Sprintf("pool.%s does not fit on this node even with one slot: move it to a larger node", b.pool.Name)
	}
	return fmt.Sprintf("pool.%s would fit with %s", b.pool.Name, strings.Join(ideas, ", or "))
}

// speeds adds a decode ceiling per pool: the slowest of its nodes'
// measured bandwidth ÷ the weights read for each token.
func (r *Report) speeds(in Input, metas map[string]gguf.Metadata) {
	for _, p := range in.Config.Pools {
		meta, ok := metas[p.Model]
		if !ok || meta.DecodeBytes <= 0 {
			continue
		}
		if p.Backend != "" && p.Backend != hiveapi.BackendCPU {
			r.Lines = append(r.Lines, fmt.Sprintf("pool.%s: decode ceiling unknown: the %s device's memory bandwidth is not measured", p.Name, p.Backend))
			continue
		}
		var bw int64
		for _, n := range p.Nodes {
			if st := in.Hives[n]; st != nil && st.Resources.MemoryBandwidth > 0 && (bw == 0 || st.Resources.MemoryBandwidth < bw) {
				bw = st.Resources.MemoryBandwidth
			}
		}
		if bw == 0 {
			r.Lines = append(r.Lines, fmt.Sprintf("pool.%s: decode ceiling unknown until the hive is installed (%s read per token)", p.Name, gb(meta.DecodeBytes)))
			continue
		}
		tps := float64(bw) / float64(meta.DecodeBytes)
		r.Lines = append(r.Lines, fmt.Sprintf("pool.%s: decode ≤ %s tok/s per stream (%.1f GB/s ÷ %s)", p.Name, rate(tps), float64(bw)/1e9, gb(meta.DecodeBytes)))
	}
}

func rate(tps float64) string {
	if tps >= 100 {
		return fmt.Sprintf("%.0f", math.Floor(tps))
	}
	return fmt.Sprintf("%.1f", math.Floor(tps*10)/10)
}

func gb(n int64) string {
	if n < 10e6 {
		return fmt.Sprintf("%.4f GB", float64(n)/1e9)
	}
	return fmt.Sprintf("%.2f GB", float64(n)/1e9)
}

func gibNum(n int64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<30)) }

func gib(n int64) string {
	if n < 100<<20 {
		return gguf.FormatBytes(n)
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}

package bench

import (
	"context"
	"errors"
	"time"

	"testing"

	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/etcdstate"
	"github.com/rbee-dev/rbee/internal/testetcd"
	"github.com/rbee-dev/rbee/operation"
	"github.com/rbee-dev/rbee/planner"
	"github.com/rbee-dev/rbee/state"
)

// BenchmarkPlanEtcdState measures `rbee plan -refresh=false` of 1000 nodes ×
// 3 pools (7000 records) with the recorded state read from etcd on loopback
// and from Pebble, interleaved in the same run: read the snapshot, decode
// and validate the configuration, diff. It reports the median of each and
// their ratio etcd ÷ Pebble (the bound for team state is 1.5).
func BenchmarkPlanEtcdState(b *testing.B) {
	const n = 1000
	ctx := context.Background()
	src := planBenchConfig(n)
	cfg, _ := config.Parse(map[string][]byte{"rbee.hcl": src}, config.LoadOptions{Environ: []string{}, StateDir: "/srv/.rbee"})
	recorded, err := planner.Desired(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range recorded.Nodes {
		r.Status = state.NodeReady
	}
	for _, r := range recorded.Models {
		r.Status = state.ModelReady
	}
	for _, r := range recorded.Workers {
		r.State = state.WorkerIdle
	}
	var records []state.Record
	for _, a := range recorded.Addrs() {
		r, _ := recorded.Get(a)
		records = append(records, r)
	}

	pebble, err := state.Open(ctx, b.TempDir(), state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := pebble.Put(ctx, records...); err != nil {
		b.Fatal(err)
	}
	cluster, err := testetcd.Start(b.TempDir(), "127.0.0.1")
	if errors.Is(err, testetcd.ErrNoEtcd) {
		b.Skip(err)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer cluster.Stop()
	etcd, err := etcdstate.Open(ctx, etcdstate.Options{Backend: config.StateBackend{Type: "etcd", Endpoints: cluster.Endpoints, Prefix: "bench"}})
	if err != nil {
		b.Fatal(err)
	}
	defer etcd.Close()
	for i := 0; i < len(records); i += 100 { // within etcd's 128 operations a transaction
		if err := etcd.Put(ctx, records[i:min(i+100, len(records))]...); err != nil {
			b.Fatal(err)
		}
	}

	plan := func(st operation.State) time.Duration {
		start := time.Now()
		snap, err := st.Snapshot(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if snap.Len() != len(records) {
			b.Fatalf("%T read %d records, want %d", st, snap.Len(), len(records))
		}
		if p := planOnce(b, src, snap); len(p.Changes) != 0 {
			b.Fatalf("%T: %d changes against the recorded state, want 0", st, len(p.Changes))
		}
		return time.Since(start)
	}
	var onPebble, onEtcd []float64
	for range benchRounds() {
		onPebble = append(onPebble, plan(pebble).Seconds()*1000)
		onEtcd = append(onEtcd, plan(etcd).Seconds()*1000)
	}
	p, e := median(onPebble), median(onEtcd)
	b.ReportMetric(p, "ms-pebble")
	b.ReportMetric(e, "ms-etcd")
	b.ReportMetric(e/p, "ratio-etcd/pebble")
	b.Logf("plan of %d nodes × 3 pools (%d records): Pebble state %.1f ms, etcd state on loopback %.1f ms, etcd ÷ Pebble = %.2f (bound 1.5)",
		n, len(records), p, e, e/p)
}

package planner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/planner/plannertest"
	"github.com/rbee-dev/rbee/state"
)

const base = `
node "local" { connection = "local" }
node "gpu1" {
  host = "10.0.0.5"
  env  = { A = "1" }
}
model "tiny" { source = "synth:tiny" }
pool "chat" {
  model    = "tiny"
  nodes    = ["local", "gpu1"]
  replicas = 2
  ctx_size = 2048
}
`

func load(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, diags := config.Parse(map[string][]byte{"rbee.hcl": []byte(src)}, config.LoadOptions{Environ: []string{}, StateDir: "/s/.rbee"})
	if diags.HasErrors() {
		var sb strings.Builder
		_ = diags.Write(&sb, false)
		t.Fatal(sb.String())
	}
	return cfg
}

func fakeSum(path string) (string, error) { return strings.Repeat("a", 64), nil }

// applied is the state a perfect apply of cfg would record.
func applied(t *testing.T, cfg *config.Config) *state.Snapshot {
	t.Helper()
	s, err := Desired(cfg, fakeSum)
	if err != nil {
		t.Fatal(err)
	}
	s.Lineage, s.Serial = "lin", 5
	for _, n := range s.Nodes {
		n.Status = state.NodeReady
	}
	for _, m := range s.Models {
		m.Status, m.ActualSHA256 = state.ModelReady, strings.Repeat("b", 64)
	}
	for _, w := range s.Workers {
		w.State = state.WorkerIdle
	}
	return s
}

func plan(t *testing.T, cfg *config.Config, snap *state.Snapshot, opts Options) *Plan {
	t.Helper()
	if opts.BinarySHA256 == nil {
		opts.BinarySHA256 = fakeSum
	}
	p, err := Make(context.Background(), cfg, snap, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// summary renders a plan as "symbol addr: reasons" lines for comparison.
func summary(p *Plan) []string {
	var out []string
	for _, c := range p.Changes {
		out = append(out, c.Symbol()+" "+c.Addr.String()+": "+strings.Join(c.Reasons, "; "))
	}
	return out
}

func TestEmptyStatePlansCreates(t *testing.T) {
	cfg := load(t, base)
	p := plan(t, cfg, state.NewSnapshot(), Options{})
	add, change, destroy := p.Counts()
	// 2 nodes + 2 model copies + 4 workers
	if add != 8 || change != 0 || destroy != 0 || !p.HasChanges() {
		t.Fatalf("counts %d %d %d:\n%s", add, change, destroy, strings.Join(summary(p), "\n"))
	}
	w := p.Change(state.WorkerAddr("chat", "gpu1", 1))
	want := []state.Addr{state.NodeAddr("gpu1"), state.ModelAddr("gpu1", "tiny")}
	if w == nil || !slices.Equal(w.DependsOn, want) {
		t.Fatalf("worker deps %v, want %v", w.DependsOn, want)
	}
	if m := p.Change(state.ModelAddr("local", "tiny")); !slices.Equal(m.DependsOn, []state.Addr{state.NodeAddr("local")}) {
		t.Fatalf("model deps %v", m.DependsOn)
	}
	if after := w.After.(*state.WorkerRecord); after.ID != "chat-1" || after.CtxSize != 2048 || after.ConfigHash == "" {
		t.Fatalf("after %+v", after)
	}
}

func TestAppliedStateHasNoChanges(t *testing.T) {
	cfg := load(t, base)
	p := plan(t, cfg, applied(t, cfg), Options{})
	if p.HasChanges() {
		t.Fatalf("changes: %v", summary(p))
	}
	if p.Lineage != "lin" || p.Serial != 5 || p.ConfigHash != cfg.Hash() {
		t.Fatalf("plan made against %q/%d/%q", p.Lineage, p.Serial, p.ConfigHash)
	}
}

// Replacements of a pool's workers run one at a time; a serving worker whose
// port the hive picks is replaced create-before-destroy under its other id,
// one with a fixed port or one that is not serving is replaced in place.
func TestRollingReplacement(t *testing.T) {
	cfg := load(t, strings.Replace(base, "ctx_size = 2048", "ctx_size = 4096", 1))
	snap := applied(t, load(t, base))
	snap.Worker("chat", "local", 1).State = state.WorkerFailed
	p := plan(t, cfg, snap, Options{})
	var prev *Change
	for _, c := range p.Changes {
		if c.Addr.Kind != state.KindWorker {
			continue
		}
		if prev != nil && !slices.Contains(c.DependsOn, prev.Addr) {
			t.Errorf("%s does not wait for %s: depends on %v", c.Addr, prev.Addr, c.DependsOn)
		}
		prev = c
		after := c.After.(*state.WorkerRecord)
		failed := c.Addr == state.WorkerAddr("chat", "local", 1)
		if c.CreateBeforeDestroy == failed {
			t.Errorf("%s: create before destroy = %v", c.Addr, c.CreateBeforeDestroy)
		}
		if want := WorkerID("chat", c.Addr.Index) + "-b"; !failed && after.ID != want {
			t.Errorf("%s: new id %q, want %q", c.Addr, after.ID, want)
		}
	}
	fixed := load(t, strings.Replace(base, "ctx_size = 2048", "ctx_size = 4096\n  port = 8100", 1))
	for _, c := range plan(t, fixed, applied(t, load(t, strings.Replace(base, "ctx_size = 2048", "ctx_size = 2048\n  port = 8100", 1))), Options{}).Changes {
		if c.CreateBeforeDestroy {
			t.Errorf("%s with a fixed port is replaced create-before-destroy", c.Addr)
		}
	}
}

// TestDiffRules is the table of what each change in configuration or live
// state plans.
func TestDiffRules(t *testing.T) {
	tests := []struct {
		name   string
		config string                // replaces base when not empty
		mutate func(*state.Snapshot) // changes the recorded state
		want   []string              // expected "symbol addr: reasons" lines, in order
	}{
		{
			name:   "ctx_size change replaces serving workers, new one first",
			config: strings.Replace(base, "ctx_size = 2048", "ctx_size = 4096", 1),
			want: []string{
				"+/- worker.chat[gpu1/0]: ctx_size 2048 → 4096",
				"+/- worker.chat[gpu1/1]: ctx_size 2048 → 4096",
				"+/- worker.chat[local/0]: ctx_size 2048 → 4096",
				"+/- worker.chat[local/1]: ctx_size 2048 → 4096",
			},
		},
		{
			name:   "flash_attn change replaces workers",
			config: strings.Replace(base, "ctx_size = 2048", "ctx_size = 2048\n  flash_attn = true", 1),
			want: []string{
				"+/- worker.chat[gpu1/0]: flash_attn false → true",
				"+/- worker.chat[gpu1/1]: flash_attn false → true",
				"+/- worker.chat[local/0]: flash_attn false → true",
				"+/- worker.chat[local/1]: flash_attn false → true",
			},
		},
		{
			name:   "drain_timeout updates in place",
			config: strings.Replace(base, "ctx_size = 2048", "ctx_size = 2048\n  drain_timeout = \"1m\"", 1),
			want: []string{
				"~ worker.chat[gpu1/0]: drain_timeout none → 1m0s",
				"~ worker.chat[gpu1/1]: drain_timeout none → 1m0s",
				"~ worker.chat[local/0]: drain_timeout none → 1m0s",
				"~ worker.chat[local/1]: drain_timeout none → 1m0s",
			},
		},
		{
			name:   "file_roots restarts the hive with them",
			config: strings.Replace(base, `host = "10.0.0.5"`, "host = \"10.0.0.5\"\n  file_roots = [\"/srv/models\"]", 1),
			want:   []string{`~ node.gpu1: file_roots "" → /srv/models`},
		},
		{
			name:   "idle_timeout updates in place",
			config: strings.Replace(base, "ctx_size = 2048", "ctx_size = 2048\n  idle_timeout = \"15m\"", 1),
			want: []string{
				"~ worker.chat[gpu1/0]: idle_timeout none → 15m0s",
				"~ worker.chat[gpu1/1]: idle_timeout none → 15m0s",
				"~ worker.chat[local/0]: idle_timeout none → 15m0s",
				"~ worker.chat[local/1]: idle_timeout none → 15m0s",
			},
		},
		{
			name:   "fewer replicas deletes workers",
			config: strings.Replace(base, "replicas = 2", "replicas = 1", 1),
			want: []string{
				"- worker.chat[gpu1/1]: replicas of pool chat reduced to 1",
				"- worker.chat[local/1]: replicas of pool chat reduced to 1",
			},
		},
		{
			name:   "removed pool deletes workers and unused model copies",
			config: "node \"local\" { connection = \"local\" }\nnode \"gpu1\" {\n  host = \"10.0.0.5\"\n  env = { A = \"1\" }\n}\n",
			want: []string{
				"- model.tiny@gpu1: model tiny is no longer in the configuration",
				"- model.tiny@local: model tiny is no longer in the configuration",
				"- worker.chat[gpu1/0]: pool chat is no longer in the configuration",
				"- worker.chat[gpu1/1]: pool chat is no longer in the configuration",
				"- worker.chat[local/0]: pool chat is no longer in the configuration",
				"- worker.chat[local/1]: pool chat is no longer in the configuration",
			},
		},
		{
			name:   "node removed from pool",
			config: strings.Replace(base, `nodes    = ["local", "gpu1"]`, `nodes    = ["local"]`, 1),
			want: []string{
				"- model.tiny@gpu1: no pool on node gpu1 uses it any more (set keep = true on the model to keep the file)",
				"- worker.chat[gpu1/0]: node gpu1 was removed from pool chat",
				"- worker.chat[gpu1/1]: node gpu1 was removed from pool chat",
			},
		},
		{
			name: "keep = true keeps an unused copy",
			config: strings.Replace(strings.Replace(base, `nodes    = ["local", "gpu1"]`, `nodes    = ["local"]`, 1),
				`model "tiny" { source = "synth:tiny" }`, "model \"tiny\" {\n  source = \"synth:tiny\"\n  keep = true\n}", 1),
			mutate: func(s *state.Snapshot) {
				for _, m := range s.Models {
					m.Keep = true
				}
			},
			want: []string{
				"- worker.chat[gpu1/0]: node gpu1 was removed from pool chat",
				"- worker.chat[gpu1/1]: node gpu1 was removed from pool chat",
			},
		},
		{
			name:   "host change replaces the node and everything on it",
			config: strings.Replace(base, "10.0.0.5", "10.0.0.6", 1),
			want: []string{
				"-/+ node.gpu1: host 10.0.0.5 → 10.0.0.6",
				"-/+ model.tiny@gpu1: node.gpu1 is replaced",
				"-/+ worker.chat[gpu1/0]: node.gpu1 is replaced",
				"-/+ worker.chat[gpu1/1]: node.gpu1 is replaced",
			},
		},
		{
			name:   "env change updates the hive and restarts its workers",
			config: strings.Replace(base, `A = "1"`, `A = "2"`, 1),
			want: []string{
				"~ node.gpu1: env.A (sensitive) changed",
				"-/+ worker.chat[gpu1/0]: env of node.gpu1 changed",
				"-/+ worker.chat[gpu1/1]: env of node.gpu1 changed",
			},
		},
		{
			name:   "model source change replaces copies and their workers",
			config: strings.Replace(base, "synth:tiny", "synth:other", 1),
			want: []string{
				"-/+ model.tiny@gpu1: source synth:tiny → synth:other",
				"-/+ model.tiny@local: source synth:tiny → synth:other",
				"-/+ worker.chat[gpu1/0]: model.tiny@gpu1 is replaced",
				"-/+ worker.chat[gpu1/1]: model.tiny@gpu1 is replaced",
				"-/+ worker.chat[local/0]: model.tiny@local is replaced",
				"-/+ worker.chat[local/1]: model.tiny@local is replaced",
			},
		},
		{
			name: "crashed, failed, missing and stopped workers",
			mutate: func(s *state.Snapshot) {
				s.Worker("chat", "local", 0).State = state.WorkerCrashed
				s.Worker("chat", "local", 1).State = state.WorkerFailed
				s.Worker("chat", "local", 1).Restarts = 5
				s.Worker("chat", "gpu1", 0).State = state.WorkerMissing
				s.Worker("chat", "gpu1", 1).State = state.WorkerStopped
			},
			want: []string{
				"+ worker.chat[gpu1/0]: worker missing on the hive",
				"+ worker.chat[gpu1/1]: worker stopped",
				// local/0 crashed: its hive restarts it, so the plan leaves it alone
				"-/+ worker.chat[local/1]: worker failed (the hive gave up after 5 restarts)",
			},
		},
		{
			name: "model drift",
			mutate: func(s *state.Snapshot) {
				s.Model("local", "tiny").Status = state.ModelMissing
				s.Model("gpu1", "tiny").Status = state.ModelChanged
			},
			want: []string{
				"-/+ model.tiny@gpu1: file on the node changed (sha256 differs from the provisioned one)",
				"+ model.tiny@local: model file missing on the node",
				"-/+ worker.chat[gpu1/0]: model.tiny@gpu1 is replaced",
				"-/+ worker.chat[gpu1/1]: model.tiny@gpu1 is replaced",
			},
		},
		{
			name: "hive drift",
			mutate: func(s *state.Snapshot) {
				s.Node("gpu1").Status = state.NodeUnreachable
				s.Node("local").BinarySHA256 = strings.Repeat("c", 64)
			},
			want: []string{
				"~ node.gpu1: node unreachable: start the hive again",
				"~ node.local: binary checksum differs (hive runs cccccccccccc…, want aaaaaaaaaaaa…)",
			},
		},
		{
			name: "hive refuses the token",
			mutate: func(s *state.Snapshot) {
				s.Node("gpu1").Status = state.NodeTokenRefused
			},
			want: []string{"~ node.gpu1: hive refused the token (401): rbee apply will reinstall the token"},
		},
		{
			name: "records not in the configuration are deleted",
			mutate: func(s *state.Snapshot) {
				s.Put(state.NodeRecord{Name: "old", Connection: "local"})
				s.Put(state.ModelRecord{Node: "old", Name: "tiny"})
				s.Put(state.WorkerRecord{Pool: "gone", Node: "old", Index: 0, Model: "tiny"})
			},
			want: []string{
				"- node.old: node old is no longer in the configuration",
				"- model.tiny@old: no pool on node old uses it any more (set keep = true on the model to keep the file)",
				"- worker.gone[old/0]: pool gone is no longer in the configuration",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := applied(t, load(t, base))
			if tt.mutate != nil {
				tt.mutate(snap)
			}
			src := base
			if tt.config != "" {
				src = tt.config
			}
			got := summary(plan(t, load(t, src), snap, Options{}))
			if !slices.Equal(got, tt.want) {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestDeletionOrderIsReversed(t *testing.T) {
	cfg := load(t, base)
	p := plan(t, cfg, applied(t, cfg), Options{Destroy: true})
	add, change, destroy := p.Counts()
	if add != 0 || change != 0 || destroy != 8 {
		t.Fatalf("destroy counts %d %d %d", add, change, destroy)
	}
	node := p.Change(state.NodeAddr("gpu1"))
	want := []state.Addr{state.ModelAddr("gpu1", "tiny"), state.WorkerAddr("chat", "gpu1", 0), state.WorkerAddr("chat", "gpu1", 1)}
	if !slices.Equal(node.DependsOn, want) {
		t.Fatalf("node deletion waits for %v, want %v", node.DependsOn, want)
	}
	model := p.Change(state.ModelAddr("gpu1", "tiny"))
	if !slices.Equal(model.DependsOn, want[1:]) {
		t.Fatalf("model deletion waits for %v", model.DependsOn)
	}
	if w := p.Change(state.WorkerAddr("chat", "gpu1", 0)); len(w.DependsOn) != 0 || w.Reasons[0] != "destroy" {
		t.Fatalf("worker deletion %+v", w)
	}
}

func TestTargets(t *testing.T) {
	cfg := load(t, base)
	for _, tc := range []struct {
		target string
		want   int
	}{
		{"node.gpu1", 4},            // the node and what runs on it
		{"worker.chat[local/0]", 3}, // the worker, its model copy and node
		{"model.tiny", 4},           // both copies and their nodes
		{"pool.chat", 8},
		{"model.tiny@local", 2},
	} {
		p := plan(t, cfg, state.NewSnapshot(), Options{Targets: []string{tc.target}})
		if len(p.Changes) != tc.want {
			t.Errorf("-target %s: %d changes, want %d: %v", tc.target, len(p.Changes), tc.want, summary(p))
		}
	}
	if _, err := Make(context.Background(), cfg, state.NewSnapshot(), Options{Targets: []string{"pools.x"}}); err == nil {
		t.Error("bad target accepted")
	}
	p := plan(t, cfg, state.NewSnapshot(), Options{Targets: []string{"node.nope"}})
	if len(p.Changes) != 0 || !strings.Contains(strings.Join(p.Warnings, "\n"), "matches no change") {
		t.Errorf("unmatched target: %v %v", summary(p), p.Warnings)
	}
}

func TestRefresh(t *testing.T) {
	cfg := load(t, base)
	snap := applied(t, cfg)
	r := &plannertest.Refresher{Mutate: func(s *state.Snapshot) {
		s.Worker("chat", "local", 0).State = state.WorkerFailed
	}}
	p := plan(t, cfg, snap, Options{Refresher: r})
	if r.Calls != 1 || !p.Refreshed || len(p.Drift) != 1 || p.Drift[0].Reasons[0] != "state idle → failed" {
		t.Fatalf("drift %+v", p.Drift)
	}
	if got := summary(p); !slices.Equal(got, []string{"-/+ worker.chat[local/0]: worker failed (the hive gave up after 0 restarts)"}) {
		t.Fatalf("changes %v", got)
	}
	if snap.Worker("chat", "local", 0).State != state.WorkerIdle {
		t.Fatal("refresh changed the recorded snapshot")
	}
	ro := plan(t, cfg, snap, Options{Refresher: r, RefreshOnly: true})
	if len(ro.Changes) != 0 || !ro.HasChanges() {
		t.Fatalf("refresh-only: %v", summary(ro))
	}
	for _, tc := range []struct {
		opts      RenderOptions
		want, not string
	}{
		{RenderOptions{}, "Apply it with `rbee refresh`", ""},
		{RenderOptions{Recording: true}, "1 object(s) changed outside of rbee.", "rbee refresh"},
	} {
		var buf bytes.Buffer
		if err := Render(&buf, ro, tc.opts); err != nil {
			t.Fatal(err)
		}
		if out := buf.String(); !strings.Contains(out, tc.want) || (tc.not != "" && strings.Contains(out, tc.not)) {
			t.Errorf("Render(%+v) = %q, want %q and not %q", tc.opts, out, tc.want, tc.not)
		}
	}
	_, err := Make(context.Background(), cfg, snap, Options{Refresher: &plannertest.Refresher{Err: errors.New("boom")}})
	if err == nil || !strings.Contains(err.Error(), "-refresh=false") {
		t.Fatalf("refresh error: %v", err)
	}
}

func TestRender(t *testing.T) {
	cfg := load(t, base)
	var buf bytes.Buffer
	if err := Render(&buf, plan(t, cfg, applied(t, cfg), Options{}), RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "No changes. Your fleet matches the configuration.\n" {
		t.Fatalf("no-change output %q", got)
	}
	buf.Reset()
	p := plan(t, load(t, strings.Replace(base, "replicas = 2", "replicas = 1", 1)), state.NewSnapshot(), Options{})
	if err := Render(&buf, p, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"  + node.local: install hive on this machine", "  + worker.chat[gpu1/0]: start tiny (cpu, ctx_size 2048, 4 slots)", "Plan: 6 to add, 0 to change, 0 to destroy."} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("colour without Color")
	}
	buf.Reset()
	_ = Render(&buf, p, RenderOptions{Color: true})
	if !strings.Contains(buf.String(), "\x1b[32m  +\x1b[0m") {
		t.Error("no colour with Color")
	}
}

func TestRenderJSON(t *testing.T) {
	cfg := load(t, base)
	snap := applied(t, cfg)
	delete(snap.Workers, state.WorkerAddr("chat", "local", 0))
	var buf bytes.Buffer
	if err := RenderJSON(&buf, plan(t, cfg, snap, Options{})); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines: %q", lines)
	}
	var change map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &change); err != nil {
		t.Fatal(err)
	}
	if change["type"] != "change" || change["address"] != "worker.chat[local/0]" || change["action"] != "create" || change["symbol"] != "+" || change["before"] != nil {
		t.Errorf("change object %v", change)
	}
	var sum map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &sum); err != nil {
		t.Fatal(err)
	}
	if sum["type"] != "summary" || sum["add"] != 1.0 || sum["changes"] != true || sum["serial"] != 5.0 {
		t.Errorf("summary %v", sum)
	}
}

func TestPlanFileRoundTripAndStale(t *testing.T) {
	cfg := load(t, base)
	snap := applied(t, cfg)
	snap.Worker("chat", "gpu1", 1).State = state.WorkerFailed
	p := plan(t, cfg, snap, Options{})
	path := filepath.Join(t.TempDir(), "plan.json")
	if err := WritePlanFile(path, p); err != nil {
		t.Fatal(err)
	}
	back, err := ReadPlanFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Lineage != "lin" || back.Serial != 5 || back.ConfigHash != cfg.Hash() || len(back.Changes) != 1 {
		t.Fatalf("read back %+v", back)
	}
	c := back.Changes[0]
	if _, ok := c.Before.(*state.WorkerRecord); !ok || c.Action != Replace || c.After.(*state.WorkerRecord).ID != "chat-1" {
		t.Fatalf("change %+v", c)
	}
	if err := back.Stale(snap, cfg.Hash()); err != nil {
		t.Fatalf("fresh plan is stale: %v", err)
	}
	later := snap.Clone()
	later.Serial++
	if err := back.Stale(later, ""); !errors.Is(err, ErrStalePlan) || !strings.Contains(err.Error(), "serial 5, now 6") {
		t.Errorf("serial: %v", err)
	}
	other := snap.Clone()
	other.Lineage = "other"
	if err := back.Stale(other, ""); !errors.Is(err, ErrStalePlan) {
		t.Errorf("lineage: %v", err)
	}
	if err := back.Stale(snap, "different"); !errors.Is(err, ErrStalePlan) {
		t.Errorf("config: %v", err)
	}
	// a plan made before any state existed fits a state created (serial 0) since
	empty := &Plan{}
	if err := empty.Stale(&state.Snapshot{Lineage: "new"}, ""); err != nil {
		t.Errorf("empty plan vs new state: %v", err)
	}
}

// A pool port gives replica i port+i on each node; changing it replaces the
// workers with a reason naming both ports.
func TestPoolPort(t *testing.T) {
	with := func(port string) *config.Config {
		return load(t, strings.Replace(base, "ctx_size = 2048", "ctx_size = 2048\n  port = "+port, 1))
	}
	cfg := with("8100")
	want, err := Desired(cfg, fakeSum)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want.Workers {
		if w.Port != 8100+w.Index {
			t.Errorf("%s: port %d, want %d", w.Addr(), w.Port, 8100+w.Index)
		}
	}
	if p := plan(t, cfg, applied(t, cfg), Options{}); p.HasChanges() {
		t.Fatalf("changes with the same port: %v", summary(p))
	}
	got := summary(plan(t, with("8200"), applied(t, cfg), Options{}))
	exp := []string{
		"-/+ worker.chat[gpu1/0]: port 8100 → 8200",
		"-/+ worker.chat[gpu1/1]: port 8101 → 8201",
		"-/+ worker.chat[local/0]: port 8100 → 8200",
		"-/+ worker.chat[local/1]: port 8101 → 8201",
	}
	if !slices.Equal(got, exp) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(exp, "\n"))
	}
}

// known_hosts reaches the node record; changing it updates the node in place.
func TestKnownHostsChange(t *testing.T) {
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	old := load(t, base)
	cfg := load(t, strings.Replace(base, `host = "10.0.0.5"`, `host = "10.0.0.5"`+"\n  known_hosts = \""+kh+"\"", 1))
	want, err := Desired(cfg, fakeSum)
	if err != nil {
		t.Fatal(err)
	}
	if got := want.Node("gpu1").KnownHosts; got != kh {
		t.Fatalf("node record known_hosts = %q, want %q", got, kh)
	}
	got := summary(plan(t, cfg, applied(t, old), Options{}))
	exp := []string{`~ node.gpu1: known_hosts "" → ` + kh}
	if !slices.Equal(got, exp) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(exp, "\n"))
	}
	if p := plan(t, old, applied(t, old), Options{}); p.HasChanges() {
		t.Errorf("no known_hosts, no change: %v", summary(p))
	}
}

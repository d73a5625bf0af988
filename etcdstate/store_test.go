package etcdstate

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/applier"
	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/internal/testetcd"
	"github.com/rbee-dev/rbee/internal/testsshd"
	"github.com/rbee-dev/rbee/operation"
	"github.com/rbee-dev/rbee/state"
)

var (
	_ operation.State     = (*Store)(nil)
	_ applier.TokenKeeper = (*Store)(nil)
)

func freePort(t testing.TB) int {
	p, err := testsshd.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startEtcd runs a one-member etcd on loopback until the test ends and
// returns its client URL.
func startEtcd(t testing.TB) string {
	t.Helper()
	c, err := testetcd.Start(t.TempDir(), "127.0.0.1")
	if errors.Is(err, testetcd.ErrNoEtcd) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c.Endpoints[0]
}

func open(t testing.TB, endpoint, prefix string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{Backend: config.StateBackend{Type: "etcd", Endpoints: []string{endpoint}, Prefix: prefix},
		LeaseTTL: 2 * time.Second, RequestTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func node(name string) state.NodeRecord {
	return state.NodeRecord{Name: name, Connection: "local", InstallDir: "/opt/rbee/" + name, HivePort: 9200, Status: state.NodeReady}
}

func TestReadsAndWrites(t *testing.T) {
	ep := startEtcd(t)
	ctx := context.Background()
	s := open(t, ep, "rw")
	snap, err := s.Snapshot(ctx)
	if err != nil || snap.Lineage != "" || snap.Serial != 0 || snap.Len() != 0 {
		t.Fatalf("fresh state: %+v, %v", snap, err)
	}
	w := state.WorkerRecord{Pool: "chat", Node: "a", Index: 0, Model: "tiny"}
	m := state.ModelRecord{Node: "a", Name: "tiny", Source: "synth:tiny"}
	steps := []struct {
		name    string
		do      func() error
		serial  uint64
		records int
	}{
		{"put two", func() error { return s.Put(ctx, node("a"), &m) }, 1, 2},
		{"put worker", func() error { return s.Put(ctx, w) }, 2, 3},
		{"replace node", func() error { n := node("a"); n.Status = state.NodeFailed; return s.Put(ctx, n) }, 3, 3},
		{"delete model", func() error { return s.Delete(ctx, m.Addr()) }, 4, 2},
		{"delete nothing", func() error { return s.Delete(ctx) }, 4, 2},
	}
	lineage := ""
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		snap, err := s.Snapshot(ctx)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if snap.Serial != st.serial || snap.Len() != st.records {
			t.Errorf("%s: serial %d with %d records, want %d with %d", st.name, snap.Serial, snap.Len(), st.serial, st.records)
		}
		if lineage == "" {
			lineage = snap.Lineage
		} else if snap.Lineage != lineage {
			t.Errorf("%s: lineage changed from %s to %s", st.name, lineage, snap.Lineage)
		}
	}
	snap, _ = s.Snapshot(ctx)
	if snap.Node("a").Status != state.NodeFailed || snap.Worker("chat", "a", 0) == nil {
		t.Errorf("records read back wrong: %+v", snap)
	}
	if err := s.Put(ctx, state.NodeRecord{Name: "Bad Name"}); err == nil {
		t.Error("a record at an invalid address was written")
	}
	other := open(t, ep, "rw/other")
	if o, _ := other.Snapshot(ctx); o.Len() != 0 {
		t.Errorf("prefix rw/other sees %d records of prefix rw", o.Len())
	}
}

func TestLockWaitsAndNamesTheHolder(t *testing.T) {
	ep := startEtcd(t)
	ctx := context.Background()
	a, b := open(t, ep, "lock"), open(t, ep, "lock")
	info, err := a.Lock(ctx, "apply", 0)
	if err != nil {
		t.Fatal(err)
	}
	if cur, err := b.CurrentLock(ctx); err != nil || cur == nil || cur.ID != info.ID {
		t.Fatalf("CurrentLock = %+v, %v; want %s", cur, err, info.ID)
	}
	_, err = b.Lock(ctx, "apply", 300*time.Millisecond)
	var le *state.LockedError
	if !errors.As(err, &le) || le.Holder.ID != info.ID || le.Waited < 300*time.Millisecond {
		t.Fatalf("second Lock: %v; want a LockedError naming %s", err, info.ID)
	}
	for _, want := range []string{info.Holder, "operation \"apply\"", "frees itself within 2s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("lock error %q does not say %q", err, want)
		}
	}
	if err := b.Put(ctx, node("x")); err == nil || !strings.Contains(err.Error(), "locked by") {
		t.Errorf("a write without the lock while another holds it: %v", err)
	}
	if err := b.Unlock(ctx, "not-the-id"); err == nil {
		t.Error("Unlock with a wrong ID released the lock")
	}
	if err := a.Put(ctx, node("x")); err != nil {
		t.Fatalf("the holder's write: %v", err)
	}
	if err := a.Unlock(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lock(ctx, "apply", time.Second); err != nil {
		t.Fatalf("Lock after Unlock: %v", err)
	}
}

func TestDeadHolderFreesTheLockAndCannotWrite(t *testing.T) {
	ep := startEtcd(t)
	ctx := context.Background()
	a, b := open(t, ep, "dead"), open(t, ep, "dead")
	if _, err := a.Lock(ctx, "apply", 0); err != nil {
		t.Fatal(err)
	}
	// The holder stops keeping its lease alive, as a process killed with -9
	// does (the features kill a real one).
	a.held.session.Orphan()
	start := time.Now()
	if _, err := b.Lock(ctx, "apply", 10*time.Second); err != nil {
		t.Fatalf("the lock of a dead holder was not freed: %v", err)
	}
	t.Logf("lock taken over %s after the holder died", time.Since(start).Round(time.Millisecond))
	err := a.Put(ctx, node("late"))
	if !errors.Is(err, ErrLockLost) {
		t.Fatalf("a write by the holder whose lease expired: %v; want ErrLockLost", err)
	}
	if snap, _ := b.Snapshot(ctx); snap.Node("late") != nil {
		t.Error("the expired holder's write reached the state")
	}
}

func TestBackupRestoreAndImport(t *testing.T) {
	ep := startEtcd(t)
	ctx := context.Background()
	s := open(t, ep, "bk")
	if _, err := s.Backup(ctx); err == nil {
		t.Error("a fresh state has a backup")
	}
	if err := s.Put(ctx, node("a")); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Snapshot(ctx)
	info, err := s.Lock(ctx, "apply", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, node("b")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, node("c")); err != nil {
		t.Fatal(err)
	}
	bk, err := s.Backup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(bk, before) {
		t.Fatalf("backup %+v, want the state before the session %+v", bk, before)
	}
	foreign := bk.Clone()
	foreign.Lineage = "another"
	if err := s.Restore(ctx, foreign, false); err == nil || !strings.Contains(err.Error(), "another state") {
		t.Errorf("restore of another lineage: %v", err)
	}
	if err := s.Restore(ctx, bk, false); err != nil {
		t.Fatal(err)
	}
	after, _ := s.Snapshot(ctx)
	if after.Len() != 1 || after.Node("a") == nil || after.Serial != 4 {
		t.Errorf("after restore: %d records, serial %d", after.Len(), after.Serial)
	}
	_ = s.Unlock(ctx, info.ID)

	dst := open(t, ep, "copy")
	if err := dst.Import(ctx, after); err != nil {
		t.Fatal(err)
	}
	got, _ := dst.Snapshot(ctx)
	if !reflect.DeepEqual(got, after) {
		t.Errorf("import gave %+v, want %+v", got, after)
	}
}

func TestTooManyRecordsForOneTransaction(t *testing.T) {
	ep := startEtcd(t)
	s := open(t, ep, "big")
	big := state.NewSnapshot()
	big.Lineage = "l"
	for i := range MaxTxnOps {
		big.Put(node(fmt.Sprintf("n%d", i)))
	}
	err := s.Import(context.Background(), big)
	if err == nil || !strings.Contains(err.Error(), "--max-txn-ops") {
		t.Fatalf("import of %d records: %v", big.Len(), err)
	}
	if snap, _ := s.Snapshot(context.Background()); snap.Len() != 0 {
		t.Errorf("a refused import wrote %d records", snap.Len())
	}
}

func TestTokens(t *testing.T) {
	ep := startEtcd(t)
	tok := open(t, ep, "tok")
	steps := []struct {
		do   func() error
		want string
	}{
		{func() error { return nil }, ""},
		{func() error { return tok.PutHiveToken("a", "secret-1") }, "secret-1"},
		{func() error { return tok.PutHiveToken("a", "secret-2") }, "secret-2"},
		{func() error { return tok.RemoveHiveToken("a") }, ""},
		{func() error { return tok.RemoveHiveToken("a") }, ""},
	}
	for i, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got, err := tok.HiveToken("a"); err != nil || got != st.want {
			t.Errorf("step %d: token %q, %v; want %q", i, got, err, st.want)
		}
	}
}

func TestUnreachableEtcdNamesTheEndpoints(t *testing.T) {
	ep := fmt.Sprintf("http://127.0.0.1:%d", freePort(t)) // nothing listens
	s, err := Open(context.Background(), Options{Backend: config.StateBackend{Endpoints: []string{ep}}, RequestTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, do := range map[string]func() error{
		"snapshot": func() error { _, err := s.Snapshot(context.Background()); return err },
		"lock":     func() error { _, err := s.Lock(context.Background(), "apply", time.Second); return err },
		"put":      func() error { return s.Put(context.Background(), node("a")) },
	} {
		err := do()
		if err == nil || !strings.Contains(err.Error(), ep) || !strings.Contains(err.Error(), "lost quorum") {
			t.Errorf("%s against a down etcd: %v", name, err)
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	for name, b := range map[string]config.StateBackend{
		"no endpoints":       {},
		"plain http offhost": {Endpoints: []string{"http://10.0.0.2:2379"}},
		"missing password":   {Endpoints: []string{"http://127.0.0.1:2379"}, Username: "u", PasswordFile: "/nonexistent/pw"},
		"missing ca":         {Endpoints: []string{"https://127.0.0.1:2379"}, CAFile: "/nonexistent/ca.pem"},
	} {
		if s, err := Open(context.Background(), Options{Backend: b}); err == nil {
			s.Close()
			t.Errorf("%s: opened", name)
		}
	}
}

func TestHistoryRecordsEveryWrite(t *testing.T) {
	ep := startEtcd(t)
	ctx := context.Background()
	s := open(t, ep, "hist")
	info, err := s.Lock(ctx, "apply", 0)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		do      func() error
		summary string
	}{
		{func() error { return s.Put(ctx, node("a"), node("b")) }, "2 put (node.a, node.b)"},
		{func() error { return s.Put(ctx, node("a")) }, "no records changed"},
		{func() error { return s.Delete(ctx, state.NodeAddr("b"), state.NodeAddr("zz")) }, "1 deleted (node.b)"},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatal(err)
		}
	}
	_ = s.Unlock(ctx, info.ID)
	h, err := s.History(ctx, 0)
	if err != nil || len(h) != len(steps) {
		t.Fatalf("history: %d entries, %v; want %d", len(h), err, len(steps))
	}
	for i, st := range steps {
		e := h[len(h)-1-i] // newest first
		if e.Summary != st.summary || e.Serial != uint64(i+1) || e.Operation != "apply" {
			t.Errorf("entry %d: %+v; want serial %d, operation apply, %q", i, e, i+1, st.summary)
		}
	}
	if last, _ := s.History(ctx, 1); len(last) != 1 || last[0].Serial != 3 {
		t.Errorf("History(1) = %+v", last)
	}
}

func TestModelHeaderCache(t *testing.T) {
	ctx := context.Background()
	ep := startEtcd(t)
	s := open(t, ep, "hdr")
	steps := []struct{ put, want string }{
		{"", ""},
		{`{"layers":2}`, `{"layers":2}`},
		{`{"layers":3}`, `{"layers":3}`},
	}
	for i, st := range steps {
		if st.put != "" {
			if err := s.PutModelHeader(ctx, "hf:a/b@c/f.gguf", []byte(st.put)); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
		}
		if got, err := s.ModelHeader(ctx, "hf:a/b@c/f.gguf"); err != nil || string(got) != st.want {
			t.Errorf("step %d: ModelHeader = %q, %v; want %q", i, got, err, st.want)
		}
	}
	snap, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Len() != 0 || snap.Serial != 0 {
		t.Errorf("the cache wrote records: %d records, serial %d", snap.Len(), snap.Serial)
	}
}

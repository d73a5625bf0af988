package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/rbee-dev/rbee/secret"
	"github.com/rbee-dev/rbee/spec"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir, Options{BusyTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEmptyStateIsNotCreatedByReading(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".rbee")
	s := open(t, dir)
	snap, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if snap.Len() != 0 || snap.Lineage != "" || snap.Serial != 0 {
		t.Fatalf("snapshot of nothing: %+v", snap)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("reading created the state folder: %v", err)
	}
}

func TestWriteReadSerialLineage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	node := NodeRecord{Name: "gpu1", Connection: "ssh", Host: "10.0.0.5", Port: 22, InstallDir: "/opt/rbee", HivePort: 9200, Status: NodeReady,
		Env: map[string]string{"A": "1"}, LastContact: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	model := &ModelRecord{Node: "gpu1", Name: "tiny", Source: "synth:tiny", Status: ModelReady, Size: 42}
	worker := WorkerRecord{Pool: "chat", Node: "gpu1", Index: 1, Model: "tiny", State: WorkerIdle, Worker: spec.Worker{CtxSize: 2048, Slots: 4, IdleTimeout: time.Minute}}
	if err := s.Put(ctx, node, model, worker); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Serial != 1 || snap.Lineage == "" || snap.Len() != 3 {
		t.Fatalf("serial %d lineage %q len %d", snap.Serial, snap.Lineage, snap.Len())
	}
	if got := snap.Node("gpu1"); got.Host != "10.0.0.5" || got.EnvDigest["A"] != secret.Digest("1") || got.Env != nil || !got.LastContact.Equal(node.LastContact) {
		t.Errorf("node %+v", got)
	}
	if got := snap.Worker("chat", "gpu1", 1); got == nil || got.IdleTimeout != time.Minute {
		t.Errorf("worker %+v", got)
	}
	lineage := snap.Lineage
	if err := s.Delete(ctx, WorkerAddr("chat", "gpu1", 1)); err != nil {
		t.Fatal(err)
	}
	// a second store on the same folder sees the same lineage and the bumped serial
	snap2, err := open(t, dir).Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap2.Serial != 2 || snap2.Lineage != lineage || snap2.Worker("chat", "gpu1", 1) != nil {
		t.Fatalf("after delete: serial %d lineage %q", snap2.Serial, snap2.Lineage)
	}
	// an Update that writes nothing does not bump the serial
	if err := s.Update(ctx, func(*Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if snap3, _ := s.Snapshot(ctx); snap3.Serial != 2 {
		t.Fatalf("empty update bumped serial to %d", snap3.Serial)
	}
}

func TestAddr(t *testing.T) {
	for _, s := range []string{"node.gpu1", "model.tinyllama@gpu1", "worker.chat[gpu1/0]", "worker.a-b[c-d/12]"} {
		a, err := ParseAddr(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if a.String() != s {
			t.Errorf("round trip %s → %s", s, a)
		}
	}
	for _, s := range []string{"", "node.", "node.GPU", "model.x", "worker.chat[gpu1]", "worker.chat[gpu1/-1]", "pool.chat", "node.a/b", "node.a b"} {
		if _, err := ParseAddr(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestLockContentionAndUnlock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, b := open(t, dir), open(t, dir)
	info, err := a.Lock(ctx, "apply", 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Lock(ctx, "plan", 300*time.Millisecond)
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second lock: %v", err)
	}
	if le.Holder.ID != info.ID || le.Holder.Operation != "apply" || le.Holder.PID != os.Getpid() {
		t.Errorf("holder %+v", le.Holder)
	}
	for _, want := range []string{"locked by", `operation "apply"`, "rbee state unlock " + info.ID, "waited"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	if err := b.Unlock(ctx, "wrong-id"); err == nil {
		t.Error("unlock with a wrong ID succeeded")
	}
	if err := b.Unlock(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	info2, err := b.Lock(ctx, "plan", 0)
	if err != nil {
		t.Fatal(err)
	}
	if cur, _ := a.CurrentLock(ctx); cur == nil || cur.ID != info2.ID {
		t.Errorf("current lock %+v", cur)
	}
	// the lock is not part of the serial
	if snap, _ := a.Snapshot(ctx); snap.Serial != 0 {
		t.Errorf("locking bumped the serial to %d", snap.Serial)
	}
}

func TestLockWaitsForRelease(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, b := open(t, dir), open(t, dir)
	info, err := a.Lock(ctx, "apply", 0)
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		info *LockInfo
		err  error
	}
	done := make(chan got, 1)
	go func() {
		info, err := b.Lock(ctx, "apply", time.Minute)
		done <- got{info, err}
	}()
	// While a holds the lock, b must not get it: it waits (the poll
	// interval is 250 ms, so a second is several attempts).
	select {
	case g := <-done:
		t.Fatalf("the second caller returned while the lock was held: %+v", g)
	case <-time.After(time.Second):
	}
	if err := a.Unlock(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	g := <-done
	if g.err != nil {
		t.Fatalf("waiting lock: %v", g.err)
	}
	cur, err := b.CurrentLock(ctx)
	if err != nil || cur == nil || cur.ID != g.info.ID || cur.ID == info.ID {
		t.Fatalf("after the wait the lock is %+v (%v), want the second caller's %s", cur, err, g.info.ID)
	}
}

// The backup holds the state as it was before the first write under a
// lock; a lock session that writes nothing (a plan) leaves it alone.
func TestBackupBeforeTheFirstLockedWrite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	node := func(name string) NodeRecord {
		return NodeRecord{Name: name, Connection: "local", InstallDir: "/x", HivePort: 9200}
	}
	backup := func() *Snapshot {
		t.Helper()
		b, err := ReadBackup(filepath.Join(dir, BackupFile))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	session := func(records ...Record) {
		t.Helper()
		info, err := s.Lock(ctx, "apply", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range records { // two writes: one backup, of the state before both
			if err := s.Put(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Unlock(ctx, info.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(ctx, node("a")); err != nil { // unlocked: no backup
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, BackupFile)); err == nil {
		t.Fatal("a write without the lock wrote a backup")
	}
	session(node("b"), node("c"))
	if b := backup(); b.Len() != 1 || b.Node("a") == nil {
		t.Fatalf("backup after the first session has %v, want only node a", b.Addrs())
	}
	session() // a plan: locks, writes nothing
	if b := backup(); b.Len() != 1 {
		t.Fatalf("a session without writes replaced the backup: %v", b.Addrs())
	}
	session(node("d"))
	if b := backup(); b.Len() != 3 || b.Node("d") != nil {
		t.Fatalf("backup after the second session has %v, want a, b, c", b.Addrs())
	}
	cur, _ := s.Snapshot(ctx)
	if err := s.Restore(ctx, backup(), false); err != nil {
		t.Fatal(err)
	}
	after, _ := s.Snapshot(ctx)
	if after.Len() != 3 || after.Node("d") != nil || after.Serial != cur.Serial+1 {
		t.Fatalf("after restore: %v serial %d (was %d)", after.Addrs(), after.Serial, cur.Serial)
	}
	if err := s.Restore(ctx, &Snapshot{Lineage: "other"}, false); err == nil || !strings.Contains(err.Error(), "another state") {
		t.Fatalf("restoring another lineage: %v", err)
	}
	if err := s.Restore(ctx, NewSnapshot(), false); err == nil || !strings.Contains(err.Error(), "names no lineage") {
		t.Fatalf("restoring a file without a lineage: %v", err)
	}
}

func TestCorruptionIsAnErrorNotAReset(t *testing.T) {
	ctx := context.Background()
	t.Run("bad record", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		if err := s.Put(ctx, NodeRecord{Name: "n"}); err != nil {
			t.Fatal(err)
		}
		raw(t, dir, func(db *pebble.DB) { _ = db.Set([]byte("node/n"), []byte("{not json"), pebble.Sync) })
		_, err := s.Snapshot(ctx)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "node/n") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("newer schema", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		if err := s.Put(ctx, NodeRecord{Name: "n"}); err != nil {
			t.Fatal(err)
		}
		raw(t, dir, func(db *pebble.DB) {
			_ = db.Set([]byte("node/n"), []byte(`{"schema":99,"type":"node","record":{"name":"n"}}`), pebble.Sync)
		})
		if _, err := s.Snapshot(ctx); err == nil || !strings.Contains(err.Error(), "newer rbee") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("newer format", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir)
		if err := s.Put(ctx, NodeRecord{Name: "n"}); err != nil {
			t.Fatal(err)
		}
		raw(t, dir, func(db *pebble.DB) { _ = db.Set(keyFormat, []byte("7"), pebble.Sync) })
		if _, err := Open(ctx, dir, Options{}); err == nil || !strings.Contains(err.Error(), "newer rbee") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("not a database", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, DBDir), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, DBDir, "MANIFEST-000001"), []byte("garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Open(ctx, dir, Options{})
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("got %v", err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, DBDir, "MANIFEST-000001")); string(b) != "garbage" {
			t.Fatal("the broken database was modified")
		}
	})
}

func raw(t *testing.T, dir string, fn func(db *pebble.DB)) {
	t.Helper()
	db, err := pebble.Open(filepath.Join(dir, DBDir), &pebble.Options{Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	fn(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotJSONAndClone(t *testing.T) {
	s := NewSnapshot()
	s.Lineage, s.Serial = "L", 7
	s.Put(NodeRecord{Name: "a", Env: map[string]string{"K": "V"}})
	s.Put(ModelRecord{Node: "a", Name: "m"})
	s.Put(WorkerRecord{Pool: "p", Node: "a", Index: 0, Model: "m"})
	c := s.Clone()
	c.Node("a").Env["K"] = "changed"
	if s.Node("a").Env["K"] != "V" {
		t.Fatal("clone shares maps")
	}
	b, err := s.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Snapshot
	if err := back.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	if back.Lineage != "L" || back.Serial != 7 || back.Len() != 3 {
		t.Fatalf("round trip: %s", b)
	}
}

func TestConcurrentWritersInOneProcess(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	errs := make(chan error, 20)
	for i := range 20 {
		go func() {
			errs <- s.Put(ctx, WorkerRecord{Pool: "p", Node: "n", Index: i, Model: "m"})
		}()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	snap, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Workers) != 20 || snap.Serial != 20 {
		t.Fatalf("%d workers, serial %d", len(snap.Workers), snap.Serial)
	}
}

func TestBusyDatabaseIsRetried(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.Put(ctx, NodeRecord{Name: "n"}); err != nil {
		t.Fatal(err)
	}
	// another holder keeps the database open (as a second rbee process would)
	db, err := pebble.Open(filepath.Join(dir, DBDir), &pebble.Options{Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, dir, Options{BusyTimeout: 200 * time.Millisecond}); err == nil || !strings.Contains(err.Error(), "in use by another rbee process") {
		t.Fatalf("opening a database another holder has open: %v", err)
	}
	released := make(chan struct{})
	go func() {
		time.Sleep(150 * time.Millisecond)
		db.Close()
		close(released)
	}()
	snap, err := s.Snapshot(ctx) // s waits up to 2s
	if err != nil {
		t.Fatalf("waiting for the database: %v", err)
	}
	<-released
	if snap.Node("n") == nil {
		t.Fatal("record lost")
	}
}

// Reads open the database read-only: they never write a file, so a reader
// cannot damage the state and opens it about ten times faster.
func TestReadsWriteNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.Put(ctx, NodeRecord{Name: "n", Connection: "local", InstallDir: "/x", HivePort: 9200}); err != nil {
		t.Fatal(err)
	}
	listing := func() string {
		ents, err := os.ReadDir(filepath.Join(dir, DBDir))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			fi, _ := e.Info()
			names = append(names, fmt.Sprintf("%s:%d", e.Name(), fi.Size()))
		}
		return strings.Join(names, " ")
	}
	before := listing()
	for range 3 {
		if _, err := s.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CurrentLock(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if after := listing(); after != before {
		t.Errorf("reads changed the database files:\nbefore %s\nafter  %s", before, after)
	}
}

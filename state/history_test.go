package state

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestHistoryRecordsEveryWrite(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	if h, err := s.History(ctx, 0); err != nil || len(h) != 0 {
		t.Fatalf("history of no state: %v %v", h, err)
	}
	if err := s.Put(ctx, NodeRecord{Name: "a"}, ModelRecord{Node: "a", Name: "m"}); err != nil {
		t.Fatal(err)
	}
	l, err := s.Lock(ctx, "state rm", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// deleting what is not there is not counted
	if err := s.Delete(ctx, ModelAddr("a", "m"), NodeAddr("nope")); err != nil {
		t.Fatal(err)
	}
	if err := s.Unlock(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	// a restore deletes and puts the same address: it counts as put
	if err := s.Update(ctx, func(tx *Tx) error {
		if err := tx.Delete(NodeAddr("a")); err != nil {
			return err
		}
		return tx.Put(&NodeRecord{Name: "a", Host: "h"})
	}); err != nil {
		t.Fatal(err)
	}
	h, err := s.History(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := user.Current()
	host, _ := os.Hostname()
	want := []struct {
		serial           uint64
		op               string
		put, deleted     []string
		summary          string
		puts, deletesNum int
	}{
		{3, OpUnlocked, []string{"node.a"}, []string{}, "1 put (node.a)", 1, 0},
		{2, "state rm", []string{}, []string{"model.m@a"}, "1 deleted (model.m@a)", 0, 1},
		{1, OpUnlocked, []string{"node.a", "model.m@a"}, []string{}, "2 put (node.a, model.m@a)", 2, 0},
	}
	if len(h) != len(want) {
		t.Fatalf("want %d entries, got %+v", len(want), h)
	}
	for i, w := range want {
		e := h[i]
		if e.Serial != w.serial || e.Operation != w.op || !slices.Equal(e.Put, w.put) || !slices.Equal(e.Deleted, w.deleted) ||
			e.Summary != w.summary || e.Puts != w.puts || e.Deletes != w.deletesNum {
			t.Errorf("entry %d: got %+v, want %+v", i, e, w)
		}
		if e.User != u.Username || e.Host != host || e.PID != os.Getpid() || time.Since(e.Time) > time.Minute || e.Time.Location() != time.UTC {
			t.Errorf("entry %d: who and when: %+v", i, e)
		}
	}
	if h, _ := s.History(ctx, 2); len(h) != 2 || h[0].Serial != 3 || h[1].Serial != 2 {
		t.Errorf("limit 2: %+v", h)
	}
	// a record written again as it was is not a change
	if err := s.Put(ctx, NodeRecord{Name: "a", Host: "h"}); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.History(ctx, 1); len(h) != 1 || h[0].Serial != 4 || h[0].Puts != 0 || h[0].Summary != "no records changed" {
		t.Errorf("unchanged rewrite: %+v", h)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	ctx := context.Background()
	old := historyKeep
	historyKeep = 3
	t.Cleanup(func() { historyKeep = old })
	s := open(t, t.TempDir())
	for i := range 7 {
		if err := s.Put(ctx, NodeRecord{Name: "n", HivePort: i}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := s.History(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var serials []uint64
	for _, e := range h {
		serials = append(serials, e.Serial)
	}
	if !slices.Equal(serials, []uint64{7, 6, 5}) {
		t.Fatalf("kept serials %v", serials)
	}
}

func TestHistoryLongSummaryIsOneLine(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	var recs []Record
	for i := range HistoryAddrs + 5 {
		recs = append(recs, WorkerRecord{Pool: "p", Node: "n", Index: i})
	}
	if err := s.Put(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	h, err := s.History(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	e := h[0]
	if e.Puts != HistoryAddrs+5 || len(e.Put) != HistoryAddrs || !strings.HasSuffix(e.Summary, "and 102 more)") || strings.Contains(e.Summary, "\n") {
		t.Fatalf("puts %d listed %d summary %q", e.Puts, len(e.Put), e.Summary)
	}
}

func TestRestoreWhenTheStateIsUnreadableOrGone(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		aside  bool
	}{
		{"damaged table", func(t *testing.T, dir string) {
			for _, f := range dbFiles(t, dir, ".sst") {
				flip(t, f, 20)
			}
		}, true},
		{"lost log tail", func(t *testing.T, dir string) {
			logs := dbFiles(t, dir, ".log")
			flip(t, logs[len(logs)-1], 30)
		}, true},
		{"database moved aside", func(t *testing.T, dir string) {
			if err := os.Rename(filepath.Join(dir, DBDir), filepath.Join(dir, "elsewhere")); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"readable", func(*testing.T, string) {}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := seeded(t)
			backup, err := ReadBackup(filepath.Join(dir, BackupFile))
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(t, dir)
			aside, err := PrepareRestore(ctx, dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if tc.aside != (aside != "") {
				t.Fatalf("set aside %q", aside)
			}
			if aside != "" && !dbExists(aside) {
				t.Fatalf("the damaged database is not at %s", aside)
			}
			l, err := s.Lock(ctx, "state restore", time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Restore(ctx, backup, false); err != nil {
				t.Fatal(err)
			}
			if err := s.Unlock(ctx, l.ID); err != nil {
				t.Fatal(err)
			}
			snap, err := s.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if snap.Lineage != backup.Lineage || snap.Serial <= backup.Serial || snap.Node("a") == nil || snap.Node("b") != nil {
				t.Fatalf("restored lineage %s serial %d (backup %s %d), %v", snap.Lineage, snap.Serial, backup.Lineage, backup.Serial, snap.Addrs())
			}
			if h, err := s.History(ctx, 1); err != nil || h[0].Operation != "state restore" {
				t.Fatalf("history %+v %v", h, err)
			}
			// the backup restored from is still there: restoring into a new
			// database saves no backup of the empty state it replaced
			if b, err := ReadBackup(filepath.Join(dir, BackupFile)); err != nil || (tc.name != "readable" && b.Lineage != backup.Lineage) {
				t.Fatalf("backup after the restore: %+v %v", b, err)
			}
		})
	}
}

func TestRestoreIntoANewFolderNeedsNoForce(t *testing.T) {
	ctx := context.Background()
	src, _ := seeded(t)
	from, err := src.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := open(t, t.TempDir())
	if _, err := s.Lock(ctx, "state restore", time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.Restore(ctx, from, false); err != nil {
		t.Fatal(err)
	}
	snap, _ := s.Snapshot(ctx)
	if snap.Lineage != from.Lineage || snap.Serial != from.Serial+1 || snap.Len() != 2 {
		t.Fatalf("lineage %s serial %d len %d; from %s %d", snap.Lineage, snap.Serial, snap.Len(), from.Lineage, from.Serial)
	}
	// a state with records of another lineage still needs -force
	other := from.Clone()
	other.Lineage = "another"
	if err := s.Restore(ctx, other, false); err == nil || !strings.Contains(err.Error(), "belongs to another state") {
		t.Fatalf("got %v", err)
	}
}

// BenchmarkPut is one write of one record: open, history entry, commit
// with fsync, marker, close.
func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		if err := s.Put(ctx, NodeRecord{Name: "n", HivePort: i}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHistory reads the last 50 entries of a history of 1,000.
func BenchmarkHistory(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		if err := s.Put(ctx, NodeRecord{Name: "n", HivePort: i}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		if h, err := s.History(ctx, 50); err != nil || len(h) != 50 {
			b.Fatal(len(h), err)
		}
	}
}

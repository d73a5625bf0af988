package state

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// These tests damage real Pebble files on disk (flipped bytes in tables and
// in the write-ahead log) the way a bad disk or an interrupted copy does.

// seeded returns a store holding two nodes written under a lock (so a backup
// exists) with the lock released again.
func seeded(t *testing.T) (*Store, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.Put(ctx, NodeRecord{Name: "a", InstallDir: "/x"}); err != nil {
		t.Fatal(err)
	}
	l, err := s.Lock(ctx, "apply", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, NodeRecord{Name: "b", InstallDir: "/x"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Unlock(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	return s, dir
}

// dbFiles lists the database's files whose names end in suffix, oldest first.
func dbFiles(t *testing.T, dir, suffix string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, DBDir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), suffix) {
			out = append(out, filepath.Join(dir, DBDir, e.Name()))
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %s file in %s", suffix, dir)
	}
	slices.Sort(out)
	return out
}

// flip inverts the byte at off (counted from the end when negative).
func flip(t *testing.T, path string, off int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off += len(b)
	}
	if off < 0 || off >= len(b) {
		t.Fatalf("%s has %d bytes; cannot flip byte %d", path, len(b), off)
	}
	b[off] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// checkDamageError asserts err is a one-line ErrCorrupt that names the
// state database and says to restore the backup.
func checkDamageError(t *testing.T, err error, want ...string) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("want ErrCorrupt, got %v", err)
	}
	msg := err.Error()
	for _, w := range append(want, DBDir, "rbee state restore", BackupFile, "Nothing was changed") {
		if !strings.Contains(msg, w) {
			t.Errorf("error does not mention %q: %s", w, msg)
		}
	}
	if strings.Contains(msg, "\n") || strings.Contains(msg, ".go:") {
		t.Errorf("error is not one line without a stack trace: %s", msg)
	}
}

// reads are the store's operations that read the database.
var reads = []struct {
	name string
	do   func(ctx context.Context, s *Store) error
}{
	{"snapshot", func(ctx context.Context, s *Store) error { _, err := s.Snapshot(ctx); return err }},
	{"current lock", func(ctx context.Context, s *Store) error { _, err := s.CurrentLock(ctx); return err }},
	{"history", func(ctx context.Context, s *Store) error { _, err := s.History(ctx, 0); return err }},
	{"lock", func(ctx context.Context, s *Store) error {
		_, err := s.Lock(ctx, "apply", time.Millisecond)
		return err
	}},
	{"put", func(ctx context.Context, s *Store) error { return s.Put(ctx, NodeRecord{Name: "c"}) }},
	{"open", func(ctx context.Context, s *Store) error {
		_, err := Open(ctx, s.Dir(), Options{})
		return err
	}},
}

func TestDamagedTableIsAnErrorThatSaysWhatToDo(t *testing.T) {
	ctx := context.Background()
	for _, op := range reads {
		t.Run(op.name, func(t *testing.T) {
			s, dir := seeded(t)
			for _, f := range dbFiles(t, dir, ".sst") {
				flip(t, f, 20) // inside the first data block
			}
			err := op.do(ctx, s)
			checkDamageError(t, err, ".sst")
		})
	}
}

func TestLostWriteAheadLogTailIsReported(t *testing.T) {
	ctx := context.Background()
	for _, off := range []struct {
		name string
		at   int
	}{{"payload", 30}, {"checksum", 1}, {"length", 4}} {
		t.Run(off.name, func(t *testing.T) {
			s, dir := seeded(t)
			// the newest log holds the last batch, the unlock
			logs := dbFiles(t, dir, ".log")
			flip(t, logs[len(logs)-1], off.at)
			for _, op := range reads {
				checkDamageError(t, op.do(ctx, s), "lost writes")
			}
		})
	}
}

func TestMissingDatabaseIsReportedWhenTheFolderHeldOne(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		remove []string // beside the database
		want   error
	}{
		{"marker and backup left", nil, ErrMissing},
		{"backup left", []string{MarkerFile}, ErrMissing},
		{"marker left", []string{BackupFile}, ErrMissing},
		{"nothing left", []string{MarkerFile, BackupFile}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := seeded(t)
			if err := os.RemoveAll(filepath.Join(dir, DBDir)); err != nil {
				t.Fatal(err)
			}
			for _, f := range tc.remove {
				if err := os.Remove(filepath.Join(dir, f)); err != nil {
					t.Fatal(err)
				}
			}
			snap, err := s.Snapshot(ctx)
			if tc.want == nil {
				if err != nil || snap.Len() != 0 {
					t.Fatalf("an empty folder: %v, %d records", err, snap.Len())
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "rbee state restore") || !strings.Contains(err.Error(), "rbee refresh") {
				t.Fatalf("got %v", err)
			}
			if _, err := s.Lock(ctx, "apply", time.Millisecond); !errors.Is(err, tc.want) {
				t.Fatalf("lock created a new state: %v", err)
			}
			if dbExists(filepath.Join(dir, DBDir)) {
				t.Fatal("a new database was created")
			}
		})
	}
}

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

// FuzzDamagedDatabase flips bits in one file of a real database (tables,
// log, manifest, options) and reads and writes it: every operation either
// works or fails with one line, never a panic, a stack trace or an exit.
func FuzzDamagedDatabase(f *testing.F) {
	for _, seed := range []struct {
		file uint8
		off  uint16
		mask byte
	}{{0, 20, 0xff}, {1, 30, 0x01}, {2, 4, 0x80}, {3, 100, 0xff}, {4, 0, 0x10}, {5, 60, 0x04}} {
		f.Add(seed.file, seed.off, seed.mask)
	}
	f.Fuzz(func(t *testing.T, file uint8, off uint16, mask byte) {
		if mask == 0 {
			return
		}
		ctx := context.Background()
		s, dir := seeded(t)
		ents, err := os.ReadDir(filepath.Join(dir, DBDir))
		if err != nil {
			t.Fatal(err)
		}
		var files []string
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && fi.Size() > 0 {
				files = append(files, filepath.Join(dir, DBDir, e.Name()))
			}
		}
		slices.Sort(files)
		p := files[int(file)%len(files)]
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[int(off)%len(b)] ^= mask
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, op := range reads {
			err := op.do(ctx, s)
			var le *LockedError
			if err == nil || errors.As(err, &le) {
				continue
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || strings.Contains(msg, ".go:") {
				t.Fatalf("%s on a flipped %s: not one line: %s", op.name, filepath.Base(p), msg)
			}
		}
		// the "lock" read may have taken the lock: release it
		if l, err := s.CurrentLock(ctx); err == nil && l != nil {
			_ = s.Unlock(ctx, l.ID)
		}
		// restoring the backup always brings the state back
		backup, err := ReadBackup(filepath.Join(dir, BackupFile))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := PrepareRestore(ctx, dir, Options{}); err != nil {
			t.Fatalf("prepare restore after a flipped %s: %v", filepath.Base(p), err)
		}
		l, err := s.Lock(ctx, "state restore", time.Millisecond)
		if err != nil {
			t.Fatalf("lock after a flipped %s: %v", filepath.Base(p), err)
		}
		if err := s.Restore(ctx, backup, false); err != nil {
			t.Fatalf("restore after a flipped %s: %v", filepath.Base(p), err)
		}
		_ = s.Unlock(ctx, l.ID)
	})
}

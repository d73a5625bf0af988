package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// HistoryEntry is one write to the state: when, under which operation, by
// whom, and what changed. Every write records one in the same batch.
type HistoryEntry struct {
	Serial    uint64    `json:"serial"`    // the state's serial after the write
	Time      time.Time `json:"time"`      // UTC
	Operation string    `json:"operation"` // the held lock's operation, or OpUnlocked
	User      string    `json:"user"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	// Put and Deleted list the addresses written and removed, sorted, at
	// most HistoryAddrs each; Puts and Deletes count them all.
	Put     []string `json:"put"`
	Deleted []string `json:"deleted"`
	Puts    int      `json:"puts"`
	Deletes int      `json:"deletes"`
	Summary string   `json:"summary"` // one line
}

// OpUnlocked is the operation of a write made without holding the lock.
const OpUnlocked = "unlocked"

// HistoryLimit is how many entries the state keeps: a write deletes those
// older than the last HistoryLimit serials in its batch.
const HistoryLimit = 10000

// HistoryAddrs is how many addresses an entry lists of each kind of change.
const HistoryAddrs = 100

// historyKeep is HistoryLimit; tests lower it.
var historyKeep uint64 = HistoryLimit

var (
	histLower = []byte("hist/")
	histUpper = []byte("hist0") // '0' follows '/'
)

func histKey(serial uint64) []byte { return fmt.Appendf(nil, "hist/%020d", serial) }

// who is the user, host and pid of this process.
var who = sync.OnceValues(func() (string, string) {
	holder := "unknown"
	if u, err := user.Current(); err == nil {
		holder = u.Username
	}
	host, _ := os.Hostname()
	return holder, host
})

// newEntry describes the write of tx as serial, under the lock db holds.
func newEntry(db *pebble.DB, tx *Tx, serial uint64) (HistoryEntry, error) {
	_, host := who()
	op := OpUnlocked
	if l, err := readLock(db); err == nil && l != nil && l.PID == os.Getpid() && l.Host == host {
		op = l.Operation
	}
	var put, deleted []Addr
	for _, a := range tx.sortedAddrs() {
		was, err := get(db, a.key())
		if err != nil {
			return HistoryEntry{}, err
		}
		switch now := tx.ops[a]; {
		case bytes.Equal(was, now):
			// rewritten as it was, or deleting what is not there: no change
		case now != nil:
			put = append(put, a)
		default:
			deleted = append(deleted, a)
		}
	}
	return NewHistoryEntry(serial, op, put, deleted), nil
}

// summarize is the one-line account of an entry's changes.
func summarize(e HistoryEntry) string {
	var parts []string
	if e.Puts > 0 {
		parts = append(parts, fmt.Sprintf("%d put (%s)", e.Puts, listSome(e.Put, e.Puts)))
	}
	if e.Deletes > 0 {
		parts = append(parts, fmt.Sprintf("%d deleted (%s)", e.Deletes, listSome(e.Deleted, e.Deletes)))
	}
	if len(parts) == 0 {
		return "no records changed"
	}
	return strings.Join(parts, ", ")
}

func listSome(addrs []string, total int) string {
	const shown = 3
	if total <= shown {
		return strings.Join(addrs, ", ")
	}
	return strings.Join(addrs[:shown], ", ") + fmt.Sprintf(" and %d more", total-shown)
}

// recordHistory adds e to b and drops the entries that fall out of the
// last historyKeep serials.
func recordHistory(b *pebble.Batch, e HistoryEntry) error {
	val, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := b.Set(histKey(e.Serial), val, nil); err != nil {
		return err
	}
	if e.Serial > historyKeep {
		return b.DeleteRange(histLower, histKey(e.Serial-historyKeep+1), nil)
	}
	return nil
}

// History returns the last limit entries, newest first (every entry kept
// when limit <= 0). A state that does not exist yet has none.
func (s *Store) History(ctx context.Context, limit int) ([]HistoryEntry, error) {
	var out []HistoryEntry
	err := s.view(ctx, func(db *pebble.DB) error {
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: histLower, UpperBound: histUpper})
		if err != nil {
			return err
		}
		for it.Last(); it.Valid() && (limit <= 0 || len(out) < limit); it.Prev() {
			var e HistoryEntry
			if err := json.Unmarshal(it.Value(), &e); err != nil {
				it.Close()
				return fmt.Errorf("%w: history entry %s is not valid JSON: %v", ErrCorrupt, it.Key(), err)
			}
			out = append(out, e)
		}
		return it.Close()
	})
	if errors.Is(err, errNoState) {
		return nil, nil
	}
	return out, err
}

package etcdstate

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbee-dev/rbee/state"
)

// MaxTxnOps is the most operations etcd takes in one transaction by default
// (its --max-txn-ops); a write of more records than fit is refused whole.
const MaxTxnOps = 128

// init creates the meta keys of a state that does not exist yet.
func (s *Store) init(ctx context.Context) error {
	k := s.key(keyFormat)
	ops := s.initOps(state.NewID())
	err := s.retry(ctx, func(rctx context.Context) error {
		_, err := s.cli.Txn(rctx).If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).Then(ops...).Commit()
		return err
	})
	return s.wrap(ctx, "creating the state", err)
}

func (s *Store) initOps(lineage string) []clientv3.Op {
	return []clientv3.Op{clientv3.OpPut(s.key(keyFormat), strconv.Itoa(state.FormatVersion)),
		clientv3.OpPut(s.key(keyLineage), lineage), clientv3.OpPut(s.key(keySerial), "0")}
}

// Put writes records in one transaction (one serial increment).
func (s *Store) Put(ctx context.Context, records ...state.Record) error {
	cs := make([]change, 0, len(records))
	for _, r := range records {
		k, v, err := state.EncodeRecord(r)
		if err != nil {
			return err
		}
		cs = append(cs, change{addr: r.Addr(), key: k, val: v})
	}
	return s.write(ctx, "writing the state", func(*read) ([]change, error) { return cs, nil })
}

// Delete removes the records at addrs in one transaction.
func (s *Store) Delete(ctx context.Context, addrs ...state.Addr) error {
	cs := make([]change, 0, len(addrs))
	for _, a := range addrs {
		if _, err := state.ParseAddr(a.String()); err != nil {
			return fmt.Errorf("cannot remove the record at %s: %w", a, err)
		}
		cs = append(cs, change{addr: a, key: a.Key()})
	}
	return s.write(ctx, "writing the state", func(*read) ([]change, error) { return cs, nil })
}

// Restore replaces every record with those of from in one transaction; the
// serial goes on counting up. A backup of another state (a different
// lineage) is refused unless force is set. The caller holds the lock.
func (s *Store) Restore(ctx context.Context, from *state.Snapshot, force bool) error {
	return s.write(ctx, "restoring the state", func(cur *read) ([]change, error) {
		if err := state.CheckRestore(cur.snap, from, force); err != nil {
			return nil, err
		}
		return s.replaceOps(cur.snap, from)
	})
}

// Import makes the state a copy of from, lineage and serial included (rbee
// state migrate). The caller holds the lock and has checked the state is
// empty or may be overwritten.
func (s *Store) Import(ctx context.Context, from *state.Snapshot) error {
	if from.Lineage == "" {
		return errors.New("the state to copy has no lineage: it was never written, so there is nothing to copy")
	}
	return s.write(ctx, "copying the state", func(cur *read) ([]change, error) {
		cs, err := s.replaceOps(cur.snap, from)
		if err != nil {
			return nil, err
		}
		// write puts serial+1; the copy keeps from's lineage and serial instead.
		return append(cs, change{key: keyLineage, val: []byte(from.Lineage), meta: true},
			change{key: keySerial, val: []byte(strconv.FormatUint(from.Serial, 10)), meta: true}), nil
	})
}

// change is one key a write sets (val) or deletes (nil val): a record, or
// for Import a meta key.
type change struct {
	addr state.Addr
	key  string // under the prefix
	val  []byte
	meta bool
}

// replaceOps delete the records of cur that from lacks and put those of
// from (etcd refuses a put inside a range deleted by the same transaction).
func (s *Store) replaceOps(cur, from *state.Snapshot) ([]change, error) {
	var cs []change
	for _, a := range cur.Addrs() {
		if _, ok := from.Get(a); !ok {
			cs = append(cs, change{addr: a, key: a.Key()})
		}
	}
	if n := len(cs) + from.Len() + 11; n > MaxTxnOps {
		return nil, fmt.Errorf("replacing the state with %d records needs one etcd transaction of %d operations, more than etcd's default limit of %d; start etcd with --max-txn-ops %d or more",
			from.Len(), n, MaxTxnOps, n)
	}
	for _, a := range from.Addrs() {
		r, _ := from.Get(a)
		k, v, err := state.EncodeRecord(r)
		if err != nil {
			return nil, err
		}
		cs = append(cs, change{addr: a, key: k, val: v})
	}
	return cs, nil
}

// write commits the operations build returns, with the serial incremented,
// in one transaction that checks the lock is still held and the serial has
// not moved (else it reads again and retries). The first write under a lock
// also saves the state as it was as the backup.
func (s *Store) write(ctx context.Context, what string, build func(cur *read) ([]change, error)) error {
	id := state.NewID()
	for attempt := 0; ; attempt++ {
		guard, held, err := s.lockGuard()
		if err != nil {
			return err
		}
		cur, err := s.read(ctx)
		if err != nil {
			return err
		}
		if cur.lastWrite == id { // an attempt whose answer was lost did commit
			s.backupDue.Store(false)
			return nil
		}
		cs, err := build(cur)
		if err != nil || len(cs) == 0 {
			return err
		}
		backup := s.backupDue.Load()
		then, cmps, err := s.writeOps(cur, cs, held, backup, id)
		if err != nil {
			return err
		}
		var resp *clientv3.TxnResponse
		err = s.retry(ctx, func(rctx context.Context) error {
			var err error
			resp, err = s.cli.Txn(rctx).If(append(cmps, guard)...).Then(then...).Else(clientv3.OpGet(s.key(keyLock))).Commit()
			return err
		})
		if err != nil && !transient(err) {
			return s.wrap(ctx, what, err)
		}
		if err == nil && resp.Succeeded {
			if backup {
				s.backupDue.Store(false)
			}
			return nil
		}
		if err == nil {
			if err := s.refused(held, resp.Responses[0].GetResponseRange().Kvs); err != nil {
				return err
			}
		}
		if attempt >= 20 {
			return fmt.Errorf("%s: the state in %s kept changing under this write; retry", what, s.Where())
		}
	}
}

// writeOps adds the serial, the time of the write, the backup and (for a
// fresh state) the meta keys to ops, and the compares that make it safe.
func (s *Store) writeOps(cur *read, cs []change, held *heldLock, backup bool, id string) ([]clientv3.Op, []clientv3.Cmp, error) {
	ops, hist, err := s.historyOps(cur, cs, held)
	if err != nil {
		return nil, nil, err
	}
	var pre []clientv3.Op
	var cmps []clientv3.Cmp
	if cur.fresh {
		pre = s.initOps(state.NewID())
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(s.key(keyFormat)), "=", 0))
	} else {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.key(keySerial)), "=", cur.serialRev))
	}
	if backup {
		b, err := encodeBackup(cur.snap)
		if err != nil {
			return nil, nil, err
		}
		pre = append(pre, clientv3.OpPut(s.key(keyBackup), string(b)))
	}
	post := []clientv3.Op{clientv3.OpPut(s.key(keySerial), strconv.FormatUint(cur.serial+1, 10)),
		clientv3.OpPut(s.key(keyUpdated), time.Now().UTC().Format(time.RFC3339Nano)), clientv3.OpPut(s.key(keyLastWrite), id)}
	// etcd refuses two puts of one key in a transaction: the last wins, so
	// Import's own lineage and serial replace the defaults.
	all := append(append(append(pre, post...), hist...), ops...)
	return dedupe(all), cmps, nil
}

func putsKey(ops []clientv3.Op, k []byte) bool {
	for _, o := range ops {
		if o.IsPut() && bytes.Equal(o.KeyBytes(), k) {
			return true
		}
	}
	return false
}

// dedupe keeps the last put of each key (a fresh state's initial lineage
// gives way to an imported one).
func dedupe(ops []clientv3.Op) []clientv3.Op {
	out := make([]clientv3.Op, 0, len(ops))
	for i, o := range ops {
		if o.IsPut() && putsKey(ops[i+1:], o.KeyBytes()) {
			continue
		}
		out = append(out, o)
	}
	return out
}

// refused explains a transaction whose compares failed: the lock lost or
// held by someone else is an error; a moved serial (nil) is retried.
func (s *Store) refused(held *heldLock, lock []*mvccpb.KeyValue) error {
	switch {
	case held != nil && (len(lock) == 0 || lock[0].CreateRevision != held.rev):
		return s.lostError(held)
	case held == nil && len(lock) > 0:
		l, err := decodeLock(lock[0].Value)
		if err != nil {
			return err
		}
		return fmt.Errorf("the state is locked by %s, so this command may not write it; wait for it to finish", l)
	}
	return nil
}

// encodeBackup is the gzip-compressed JSON of snap (state.backup.json of
// the Pebble store), small enough for one etcd value for thousands of records.
func encodeBackup(snap *state.Snapshot) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(snap); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Backup returns the state as it was before the last locked session that
// changed it, or an error saying there is none.
func (s *Store) Backup(ctx context.Context) (*state.Snapshot, error) {
	rctx, cancel := s.request(ctx)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.key(keyBackup))
	if err != nil {
		return nil, s.wrap(ctx, "reading the state backup", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("%s holds no backup yet: nothing has changed the state under a lock", s.Where())
	}
	zr, err := gzip.NewReader(bytes.NewReader(resp.Kvs[0].Value))
	if err != nil {
		return nil, fmt.Errorf("%w: the backup in %s is unreadable: %v", state.ErrCorrupt, s.Where(), err)
	}
	b, err := io.ReadAll(io.LimitReader(zr, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: the backup in %s is unreadable: %v", state.ErrCorrupt, s.Where(), err)
	}
	snap := state.NewSnapshot()
	if err := json.Unmarshal(b, snap); err != nil {
		return nil, fmt.Errorf("%w: the backup in %s is unreadable: %v", state.ErrCorrupt, s.Where(), err)
	}
	return snap, nil
}

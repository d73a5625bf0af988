package etcdstate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbee-dev/rbee/state"
)

// keyHistory is the prefix of the history entries, one per serial.
const keyHistory = "hist/"

func histKey(serial uint64) string { return fmt.Sprintf(keyHistory+"%020d", serial) }

// historyOps turns the changes into operations and adds the history entry
// of the write (what changed compared with cur, by whom, under which
// operation), dropping entries older than the last state.HistoryLimit.
func (s *Store) historyOps(cur *read, cs []change, held *heldLock) (ops, hist []clientv3.Op, err error) {
	var put, deleted []state.Addr
	for _, c := range cs {
		if c.meta {
			ops = append(ops, clientv3.OpPut(s.key(c.key), string(c.val)))
			continue
		}
		was, had := cur.snap.Get(c.addr)
		var wasVal []byte
		if had {
			if _, wasVal, err = state.EncodeRecord(was); err != nil {
				return nil, nil, err
			}
		}
		switch {
		case c.val == nil:
			ops = append(ops, clientv3.OpDelete(s.key(c.key)))
			if had {
				deleted = append(deleted, c.addr)
			}
		default:
			ops = append(ops, clientv3.OpPut(s.key(c.key), string(c.val)))
			if !bytes.Equal(wasVal, c.val) {
				put = append(put, c.addr)
			}
		}
	}
	op := state.OpUnlocked
	if held != nil {
		op = held.info.Operation
	}
	serial := cur.serial + 1
	e := state.NewHistoryEntry(serial, op, put, deleted)
	val, err := json.Marshal(e)
	if err != nil {
		return nil, nil, err
	}
	hist = []clientv3.Op{clientv3.OpPut(s.key(histKey(serial)), string(val))}
	if serial > state.HistoryLimit {
		hist = append(hist, clientv3.OpDelete(s.key(keyHistory), clientv3.WithRange(s.key(histKey(serial-state.HistoryLimit+1)))))
	}
	return ops, hist, nil
}

// History returns the last limit entries, newest first (every entry kept
// when limit <= 0). A state that does not exist yet has none.
func (s *Store) History(ctx context.Context, limit int) ([]state.HistoryEntry, error) {
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(limit)))
	}
	var resp *clientv3.GetResponse
	err := s.retry(ctx, func(rctx context.Context) error {
		var err error
		resp, err = s.cli.Get(rctx, s.key(keyHistory), opts...)
		return err
	})
	if err != nil {
		return nil, s.wrap(ctx, "reading the state history", err)
	}
	out := make([]state.HistoryEntry, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var e state.HistoryEntry
		if err := json.Unmarshal(kv.Value, &e); err != nil {
			return nil, fmt.Errorf("%w: history entry %s in %s is not valid JSON: %v", state.ErrCorrupt, kv.Key, s.Where(), err)
		}
		out = append(out, e)
	}
	return out, nil
}

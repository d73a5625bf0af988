package etcdstate

import (
	"context"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/rbee-dev/rbee/state"
)

// recordKinds are the key ranges that hold records.
var recordKinds = []state.Kind{state.KindNode, state.KindModel, state.KindWorker}

// read is one consistent read: the meta keys and every record.
type read struct {
	meta
	snap *state.Snapshot
}

// Snapshot reads every record at one revision. A state that does not exist
// yet gives an empty snapshot.
func (s *Store) Snapshot(ctx context.Context) (*state.Snapshot, error) {
	r, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	return r.snap, nil
}

// read gets the meta keys and the records in one transaction, so at one
// revision.
func (s *Store) read(ctx context.Context) (*read, error) {
	ops := []clientv3.Op{clientv3.OpGet(s.key("meta/"), clientv3.WithPrefix())}
	for _, k := range recordKinds {
		ops = append(ops, clientv3.OpGet(s.key(string(k)+"/"), clientv3.WithPrefix()))
	}
	var resp *clientv3.TxnResponse
	err := s.retry(ctx, func(rctx context.Context) error {
		var err error
		resp, err = s.cli.Txn(rctx).Then(ops...).Commit()
		return err
	})
	if err != nil {
		return nil, s.wrap(ctx, "reading the state", err)
	}
	vals, revs := map[string][]byte{}, map[string]int64{}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		k := strings.TrimPrefix(string(kv.Key), s.root)
		vals[k], revs[k] = kv.Value, kv.ModRevision
	}
	m, err := s.readMeta(vals, revs)
	if err != nil {
		return nil, err
	}
	out := &read{meta: m, snap: state.NewSnapshot()}
	out.snap.Lineage, out.snap.Serial = m.lineage, m.serial
	for _, rr := range resp.Responses[1:] {
		for _, kv := range rr.GetResponseRange().Kvs {
			rec, err := state.DecodeStored(kv.Key[len(s.root):], kv.Value)
			if err != nil {
				return nil, err
			}
			out.snap.Put(rec)
		}
	}
	return out, nil
}

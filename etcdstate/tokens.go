package etcdstate

import (
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Hive tokens live under the prefix (hive-tokens/NODE), so every machine
// that shares the state can talk to the hives: Store is an
// applier.TokenKeeper.

// HiveToken returns the token of node's hive, or "" when none is recorded.
func (s *Store) HiveToken(node string) (string, error) {
	ctx := context.Background()
	var resp *clientv3.GetResponse
	err := s.retry(ctx, func(rctx context.Context) error {
		var err error
		resp, err = s.cli.Get(rctx, s.key(keyTokens+node))
		return err
	})
	if err != nil {
		return "", s.wrap(ctx, "reading the hive token of node "+node, err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return strings.TrimSpace(string(resp.Kvs[0].Value)), nil
}

// PutHiveToken records node's token; like every write it checks the lock.
func (s *Store) PutHiveToken(node, token string) error {
	return s.tokenWrite(node, clientv3.OpPut(s.key(keyTokens+node), token))
}

// RemoveHiveToken forgets node's token.
func (s *Store) RemoveHiveToken(node string) error {
	return s.tokenWrite(node, clientv3.OpDelete(s.key(keyTokens+node)))
}

func (s *Store) tokenWrite(node string, op clientv3.Op) error {
	guard, held, err := s.lockGuard()
	if err != nil {
		return err
	}
	ctx := context.Background()
	var resp *clientv3.TxnResponse
	err = s.retry(ctx, func(rctx context.Context) error { // a put or a delete may be repeated
		var err error
		resp, err = s.cli.Txn(rctx).If(guard).Then(op).Else(clientv3.OpGet(s.key(keyLock))).Commit()
		return err
	})
	if err != nil {
		return s.wrap(ctx, "writing the hive token of node "+node, err)
	}
	if !resp.Succeeded {
		if err := s.refused(held, resp.Responses[0].GetResponseRange().Kvs); err != nil {
			return err
		}
		return fmt.Errorf("writing the hive token of node %s: the state lock changed; retry", node)
	}
	return nil
}

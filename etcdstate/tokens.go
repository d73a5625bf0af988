package etcdstate

import (
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Tokens keeps each node's hive token under the prefix (hive-tokens/NODE),
// so every machine that shares the state can talk to the hives. It is the
// applier.TokenKeeper of an etcd state.
type Tokens struct{ s *Store }

// HiveTokens returns the token store of the state.
func (s *Store) HiveTokens() Tokens { return Tokens{s: s} }

// Get returns the token of node's hive, or "" when none is recorded.
func (t Tokens) Get(node string) (string, error) {
	ctx, cancel := t.s.request(context.Background())
	defer cancel()
	resp, err := t.s.cli.Get(ctx, t.s.key(keyTokens+node))
	if err != nil {
		return "", t.s.wrap(ctx, "reading the hive token of node "+node, err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return strings.TrimSpace(string(resp.Kvs[0].Value)), nil
}

// Put records node's token; like every write it checks the lock is held.
func (t Tokens) Put(node, token string) error {
	return t.write(node, clientv3.OpPut(t.s.key(keyTokens+node), token))
}

// Remove forgets node's token.
func (t Tokens) Remove(node string) error {
	return t.write(node, clientv3.OpDelete(t.s.key(keyTokens+node)))
}

func (t Tokens) write(node string, op clientv3.Op) error {
	guard, held, err := t.s.lockGuard()
	if err != nil {
		return err
	}
	ctx, cancel := t.s.request(context.Background())
	defer cancel()
	resp, err := t.s.cli.Txn(ctx).If(guard).Then(op).Else(clientv3.OpGet(t.s.key(keyLock))).Commit()
	if err != nil {
		return t.s.wrap(ctx, "writing the hive token of node "+node, err)
	}
	if !resp.Succeeded {
		if err := t.s.refused(held, resp.Responses[0].GetResponseRange().Kvs); err != nil {
			return err
		}
		return fmt.Errorf("writing the hive token of node %s: the state lock changed; retry", node)
	}
	return nil
}

package etcdstate

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// keyHeaders prefixes the model header cache (see state.Store.ModelHeader):
// shared by every machine that plans against this state, and not records,
// so no snapshot, backup, history or lock covers it.
const keyHeaders = "cache/model-headers/"

// ModelHeader returns the header summary cached under key, or nil when none is.
func (s *Store) ModelHeader(ctx context.Context, key string) ([]byte, error) {
	var resp *clientv3.GetResponse
	err := s.retry(ctx, func(rctx context.Context) error {
		var err error
		resp, err = s.cli.Get(rctx, s.key(keyHeaders+key))
		return err
	})
	if err != nil {
		return nil, s.wrap(ctx, "reading the model header cache", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return resp.Kvs[0].Value, nil
}

// PutModelHeader caches a header summary under key. An entry only ever
// says what a file with that content holds, so it needs no lock.
func (s *Store) PutModelHeader(ctx context.Context, key string, summary []byte) error {
	err := s.retry(ctx, func(rctx context.Context) error {
		_, err := s.cli.Put(rctx, s.key(keyHeaders+key), string(summary))
		return err
	})
	if err != nil {
		return s.wrap(ctx, "caching the model header "+key, err)
	}
	return nil
}

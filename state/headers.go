package state

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// keyHeaders prefixes the model header cache: what rbee plan read from the
// header of a model file at its source (a summary, not the vocabulary),
// keyed by what names the file's content (fit.Headers says which sources
// have such a key). Its entries are not records: no snapshot, backup or
// history holds them and no serial counts them.
const keyHeaders = "cache/model-headers/"

// ModelHeader returns the header summary cached under key, or nil when none is.
func (s *Store) ModelHeader(ctx context.Context, key string) ([]byte, error) {
	var out []byte
	err := s.view(ctx, func(db *pebble.DB) error {
		var err error
		out, err = get(db, []byte(keyHeaders+key))
		return err
	})
	if errors.Is(err, errNoState) {
		return nil, nil
	}
	return out, err
}

// PutModelHeader caches a header summary under key. A state that holds
// nothing yet keeps nothing: the cache never creates a state.
func (s *Store) PutModelHeader(ctx context.Context, key string, summary []byte) error {
	err := s.with(ctx, readWrite, func(db *pebble.DB) error {
		b := db.NewBatch()
		defer b.Close()
		_ = b.Set([]byte(keyHeaders+key), summary, nil)
		return s.commit(db, b)
	})
	if errors.Is(err, errNoState) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("caching the model header %s in the state: %w", key, err)
	}
	return nil
}

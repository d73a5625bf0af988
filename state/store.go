// Package state is rbee's record of what it did: nodes, models on nodes and
// workers, kept as typed, versioned JSON records in a Pebble database, with a
// serial that grows on every write, a lineage fixed at creation, and a lock
// that keeps two operations from changing the fleet at once.
//
// The database is opened for each operation and closed right after, so that
// several rbee processes (a long apply, a `state list`, a watch daemon) can
// share one state folder; a process that finds it busy retries for a short
// while (Options.BusyTimeout).
package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// FormatVersion is the layout of the database this rbee reads and writes.
const FormatVersion = 1

// RecordSchema is the version of the record envelopes this rbee writes.
const RecordSchema = 1

// DBDir is the folder of the Pebble database inside the state folder.
const DBDir = "state"

// BackupFile is the JSON copy of the state as it was before the last locked
// session that changed it (an apply, a refresh, a state rm, ...).
const BackupFile = "state.backup.json"

// Meta keys.
var (
	keyFormat  = []byte("meta/format")
	keyLineage = []byte("meta/lineage")
	keySerial  = []byte("meta/serial")
	keyLock    = []byte("meta/lock")
	keyUpdated = []byte("meta/updated")
)

// Options tune a Store.
type Options struct {
	// BusyTimeout is how long an operation waits while another process has
	// the database open (each holds it for milliseconds). Default 30s.
	BusyTimeout time.Duration
	// Logger receives debug messages; nil discards them.
	Logger *slog.Logger
}

// Store is the state in one folder. It is safe for concurrent use.
type Store struct {
	dir  string
	opts Options
	mu   sync.Mutex // one open database per process at a time
	// backupDue is set by Lock: the first Update that changes something
	// writes the state as it was to BackupFile before it commits.
	backupDue atomic.Bool
	// allowFresh lets a missing database be created although the folder
	// shows it held one (PrepareRestore).
	allowFresh bool
}

// ErrCorrupt marks errors about unreadable or inconsistent state. The state is
// never reset on such an error.
var ErrCorrupt = errors.New("state is corrupt")

// Open returns the store in dir (the rbee state folder, e.g. .rbee). A folder
// that holds no state yet is fine: the database is created by the first
// write or lock. An existing database is checked (format version, lineage)
// before Open returns.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	s, err := newStore(dir, opts)
	if err != nil {
		return nil, err
	}
	err = s.view(ctx, func(db *pebble.DB) error { return nil })
	if err != nil && !errors.Is(err, errNoState) {
		return nil, err
	}
	return s, nil
}

// newStore is Open without opening the database.
func newStore(dir string, opts Options) (*Store, error) {
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("state folder %s: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("state folder %s is a file; pass --state DIR with a folder", abs)
	}
	return &Store{dir: abs, opts: opts}, nil
}

// Dir is the state folder.
func (s *Store) Dir() string { return s.dir }

func (s *Store) dbPath() string { return filepath.Join(s.dir, DBDir) }

var errNoState = errors.New("no state yet")

func dbExists(path string) bool {
	ents, err := os.ReadDir(path)
	return err == nil && len(ents) > 0
}

// access says how with opens the database.
type access int

const (
	readOnly  access = iota // an existing database, for reading (opens ten times faster)
	readWrite               // an existing database
	create                  // created when missing
)

// view runs fn on the database opened read-only; errNoState when none exists.
func (s *Store) view(ctx context.Context, fn func(db *pebble.DB) error) error {
	return s.with(ctx, readOnly, fn)
}

// with opens the database as mode says, checks its format and that no
// write was lost, runs fn and closes it. Corruption Pebble finds on the way
// is reported as an ErrCorrupt error that says where and what to do.
func (s *Store) with(ctx context.Context, mode access, fn func(db *pebble.DB) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	path := s.dbPath()
	fresh := !dbExists(path)
	if fresh {
		if err := s.checkMissing(); err != nil {
			return err
		}
		if mode != create {
			return errNoState
		}
		if err := os.MkdirAll(path, 0o700); err != nil {
			return fmt.Errorf("creating state folder %s: %w", path, err)
		}
	}
	d := &damage{}
	db, err := s.open(ctx, path, !fresh, mode == readOnly, d)
	if err != nil {
		return err
	}
	defer db.Close()
	err = s.checkFormat(db, fresh, mode == readOnly)
	if err == nil {
		err = s.checkCommit(db)
	}
	if err == nil {
		err = fn(db)
	}
	return s.explain(err, d)
}

func (s *Store) open(ctx context.Context, path string, mustExist, readOnly bool, d *damage) (*pebble.DB, error) {
	deadline := time.Now().Add(s.opts.BusyTimeout)
	wait := 10 * time.Millisecond
	for {
		db, err := pebble.Open(path, &pebble.Options{Logger: quiet{dir: path}, EventListener: d.listener(),
			ErrorIfNotExists: mustExist, ReadOnly: readOnly})
		if err == nil {
			return db, nil
		}
		if isCorruption(err) {
			return nil, s.damaged(d.damagedFile(), err)
		}
		if !isBusy(err) {
			return nil, fmt.Errorf("%w: the state database in %s cannot be opened: %s. Nothing was changed. %s",
				ErrCorrupt, path, firstLine(err), s.restoreHint())
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the state database %s stayed in use by another rbee process for %s: %s", path, s.opts.BusyTimeout, firstLine(err))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 200*time.Millisecond)
	}
}

func isBusy(err error) bool {
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "lock held") || strings.Contains(msg, "resource temporarily unavailable")
}

// checkFormat verifies meta/format, initialising a fresh (or empty) database
// unless it is opened read-only.
func (s *Store) checkFormat(db *pebble.DB, fresh, readOnly bool) error {
	v, err := get(db, keyFormat)
	if err != nil {
		return err
	}
	if v == nil {
		if !fresh && !isEmpty(db) {
			return fmt.Errorf("%w: %s holds a database without rbee's format marker; it is not rbee state. Point --state at another folder", ErrCorrupt, s.dbPath())
		}
		if readOnly {
			return errNoState
		}
		b := db.NewBatch()
		defer b.Close()
		_ = b.Set(keyFormat, []byte(strconv.Itoa(FormatVersion)), nil)
		_ = b.Set(keyLineage, []byte(newID()), nil)
		_ = b.Set(keySerial, []byte("0"), nil)
		if err := s.commit(db, b); err != nil {
			return fmt.Errorf("initialising state in %s: %w", s.dbPath(), err)
		}
		s.opts.Logger.Debug("created state", "dir", s.dbPath())
		return nil
	}
	n, err := strconv.Atoi(string(v))
	switch {
	case err != nil || n < 1:
		return fmt.Errorf("%w: format marker %q in %s is unreadable", ErrCorrupt, v, s.dbPath())
	case n > FormatVersion:
		return fmt.Errorf("the state in %s has format %d, written by a newer rbee; this rbee reads format %d. Upgrade rbee", s.dbPath(), n, FormatVersion)
	}
	return nil
}

func isEmpty(db *pebble.DB) bool {
	it, err := db.NewIter(nil)
	if err != nil {
		return false
	}
	defer it.Close()
	return !it.First()
}

func get(db *pebble.DB, key []byte) ([]byte, error) {
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

type envelope struct {
	Schema int             `json:"schema"`
	Type   Kind            `json:"type"`
	Record json.RawMessage `json:"record"`
}

// Snapshot reads every record. A state that does not exist yet gives an
// empty snapshot.
func (s *Store) Snapshot(ctx context.Context) (*Snapshot, error) {
	snap := NewSnapshot()
	err := s.view(ctx, func(db *pebble.DB) error { return readSnapshot(db, snap) })
	if errors.Is(err, errNoState) {
		return snap, nil
	}
	if err != nil {
		return nil, err
	}
	return snap, nil
}

func readSnapshot(db *pebble.DB, snap *Snapshot) error {
	lin, err := get(db, keyLineage)
	if err != nil {
		return err
	}
	if len(lin) == 0 {
		return fmt.Errorf("%w: the lineage is missing", ErrCorrupt)
	}
	snap.Lineage = string(lin)
	ser, err := get(db, keySerial)
	if err != nil {
		return err
	}
	if snap.Serial, err = strconv.ParseUint(string(ser), 10, 64); err != nil {
		return fmt.Errorf("%w: serial %q is unreadable", ErrCorrupt, ser)
	}
	for _, prefix := range []Kind{KindNode, KindModel, KindWorker} {
		lower := []byte(string(prefix) + "/")
		upper := []byte(string(prefix) + "0") // '0' follows '/'
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			return err
		}
		for it.First(); it.Valid(); it.Next() {
			rec, err := decodeRecord(it.Key(), it.Value())
			if err != nil {
				it.Close()
				return err
			}
			snap.Put(rec)
		}
		if err := it.Close(); err != nil {
			return err
		}
	}
	return nil
}

func decodeRecord(key, val []byte) (Record, error) {
	var env envelope
	if err := json.Unmarshal(val, &env); err != nil {
		return nil, fmt.Errorf("%w: record %s is not valid JSON: %v. Remove it with `rbee state rm` or restore the backup", ErrCorrupt, key, err)
	}
	if env.Schema < 1 {
		return nil, fmt.Errorf("%w: record %s has no schema version", ErrCorrupt, key)
	}
	if env.Schema > RecordSchema {
		return nil, fmt.Errorf("record %s has schema %d, written by a newer rbee; this rbee reads schema %d. Upgrade rbee", key, env.Schema, RecordSchema)
	}
	rec, err := DecodeRecord(env.Type, env.Record)
	if errors.Is(err, errUnknownKind) {
		return nil, fmt.Errorf("%w: record %s has unknown type %q", ErrCorrupt, key, env.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: record %s: %v", ErrCorrupt, key, err)
	}
	if string(rec.Addr().key()) != string(key) {
		return nil, fmt.Errorf("%w: record stored at %s describes %s", ErrCorrupt, key, rec.Addr())
	}
	return rec, nil
}

// errUnknownKind is DecodeRecord's error for a kind it does not know.
var errUnknownKind = errors.New("unknown resource kind")

// DecodeRecord decodes the JSON of a record of kind k into a new
// *NodeRecord, *ModelRecord or *WorkerRecord.
func DecodeRecord(k Kind, raw []byte) (Record, error) {
	var rec Record
	switch k {
	case KindNode:
		rec = &NodeRecord{}
	case KindModel:
		rec = &ModelRecord{}
	case KindWorker:
		rec = &WorkerRecord{}
	default:
		return nil, fmt.Errorf("%w %q", errUnknownKind, k)
	}
	return rec, json.Unmarshal(raw, rec)
}

func encodeRecord(r Record) ([]byte, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return json.Marshal(envelope{Schema: RecordSchema, Type: r.Addr().Kind, Record: body})
}

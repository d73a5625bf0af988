package state

import (
	"os"
	"time"
)

// The exported forms below let another state backend (etcd) keep the same
// keys, record envelopes and lock descriptions as the Pebble store.

// Key is the key of the record at a, relative to the state's root:
// node/<name>, model/<node>/<name>, worker/<pool>/<node>/<i>.
func (a Addr) Key() string { return string(a.key()) }

// EncodeRecord checks r's address and returns its key and its stored form
// (a versioned JSON envelope), as the Pebble store writes them.
func EncodeRecord(r Record) (key string, val []byte, err error) {
	switch v := r.(type) {
	case *NodeRecord:
		r = *v
	case *ModelRecord:
		r = *v
	case *WorkerRecord:
		r = *v
	}
	a := r.Addr()
	if err := checkAddr(a); err != nil {
		return "", nil, err
	}
	val, err = encodeRecord(r)
	return a.Key(), val, err
}

// DecodeStored decodes the stored form of a record kept at key, checking
// its schema version and that it describes the resource at key.
func DecodeStored(key, val []byte) (Record, error) { return decodeRecord(key, val) }

// NewLockInfo describes this process taking the lock for op, with a new ID.
func NewLockInfo(op string) LockInfo {
	holder, host := who()
	return LockInfo{ID: NewID(), Holder: holder, PID: os.Getpid(), Host: host, Operation: op, Created: time.Now().UTC().Truncate(time.Second)}
}

// NewID returns a random identifier in UUID form (lineages, lock IDs).
func NewID() string { return newID() }

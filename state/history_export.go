package state

import (
	"os"
	"time"
)

// NewHistoryEntry describes a write, as serial, of the records at put and
// deleted by this process under operation op (OpUnlocked without the lock):
// the entry another state backend (etcd) records with the write.
func NewHistoryEntry(serial uint64, op string, put, deleted []Addr) HistoryEntry {
	usr, host := who()
	e := HistoryEntry{Serial: serial, Time: time.Now().UTC(), Operation: op, User: usr, Host: host, PID: os.Getpid(),
		Put: []string{}, Deleted: []string{}, Puts: len(put), Deletes: len(deleted)}
	for _, a := range put[:min(len(put), HistoryAddrs)] {
		e.Put = append(e.Put, a.String())
	}
	for _, a := range deleted[:min(len(deleted), HistoryAddrs)] {
		e.Deleted = append(e.Deleted, a.String())
	}
	e.Summary = summarize(e)
	return e
}

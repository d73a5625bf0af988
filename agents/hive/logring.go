package hive

import (
	"bytes"
	"io"
	"os"
	"sync"
)

// logRing keeps the last lines a worker wrote (stdout and stderr) in memory
// and appends everything to a log file in the data dir.
type logRing struct {
	mu      sync.Mutex
	lines   []string
	next    int
	full    bool
	partial []byte
	file    io.WriteCloser
}

// maxLineLen bounds one remembered line; longer output is cut.
const maxLineLen = 4096

func newLogRing(n int, path string) *logRing {
	r := &logRing{lines: make([]string, n)}
	if path != "" {
		if f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
			r.file = f
		}
	}
	return r
}

// Write implements io.Writer; it is safe for concurrent use.
func (r *logRing) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.file != nil {
		_, _ = r.file.Write(p)
	}
	data := append(r.partial, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		r.add(string(data[:i]))
		data = data[i+1:]
	}
	if len(data) > maxLineLen {
		r.add(string(data[:maxLineLen]))
		data = nil
	}
	r.partial = append([]byte(nil), data...)
	return len(p), nil
}

// hiveNotePrefix starts the lines the hive itself adds to a worker's log.
const hiveNotePrefix = "[hive] "

// Note adds a line written by the hive itself (spawns, exits).
func (r *logRing) Note(line string) {
	_, _ = r.Write([]byte(hiveNotePrefix + line + "\n"))
}

func (r *logRing) add(line string) {
	if len(line) > maxLineLen {
		line = line[:maxLineLen]
	}
	r.lines[r.next] = line
	r.next = (r.next + 1) % len(r.lines)
	if r.next == 0 {
		r.full = true
	}
}

// Tail returns up to n of the last lines, oldest first.
func (r *logRing) Tail(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []string
	if r.full {
		all = append(all, r.lines[r.next:]...)
	}
	all = append(all, r.lines[:r.next]...)
	if len(r.partial) > 0 {
		all = append(all, string(r.partial))
	}
	if n > 0 && len(all) > n {
		all = all[len(all)-n:]
	}
	return all
}

// Close closes the log file.
func (r *logRing) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.file != nil {
		r.file.Close()
		r.file = nil
	}
}

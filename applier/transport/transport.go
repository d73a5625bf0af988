// Package transport runs commands and copies files on a node: over SSH for
// remote nodes, directly for connection = "local". Only apply needs it.
package transport

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// Transport executes commands and uploads files on one node.
type Transport interface {
	// Run runs argv on the node and returns its standard output. Every
	// argument reaches the program unchanged: on remote shells each one is
	// quoted. stdin may be nil. A non-zero exit is an *ExitError.
	Run(ctx context.Context, argv []string, stdin io.Reader) ([]byte, error)
	// Upload copies localPath to remotePath with mode: it writes a temporary
	// file beside the target, verifies its sha256 on the node, then renames it
	// into place atomically. Missing parent folders are created.
	Upload(ctx context.Context, localPath, remotePath string, mode fs.FileMode) error
	// Close releases the connection.
	Close() error
}

// ExitError is a command that ran and exited non-zero.
type ExitError struct {
	Argv   []string
	Code   int
	Stderr string
}

func (e *ExitError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if len(msg) > 2000 {
		msg = "…" + msg[len(msg)-2000:]
	}
	if msg == "" {
		return fmt.Sprintf("%s exited with status %d", Join(e.Argv[:min(len(e.Argv), 3)]), e.Code)
	}
	return fmt.Sprintf("%s exited with status %d: %s", Join(e.Argv[:min(len(e.Argv), 3)]), e.Code, msg)
}

// Quote returns s quoted for a POSIX shell so that it is read back as exactly
// one word with the same bytes. Plain words are left as they are.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Join quotes every argument and joins them with spaces: a command line that
// a remote shell splits back into argv.
func Join(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

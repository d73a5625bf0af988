package applier

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/rbee-dev/rbee/applier/transport"
	"github.com/rbee-dev/rbee/state"
)

// HiveLog reads the log file a node's hive writes (install_dir/hive.log,
// where InstallHive sends its output), over the node's transport.
type HiveLog struct {
	t transport.Transport
	n Node
}

// OpenHiveLog connects to the node of rec (SSH, or this machine).
func OpenHiveLog(ctx context.Context, rec *state.NodeRecord) (*HiveLog, error) {
	n := nodeFromRecord(rec)
	t, err := Dial(ctx, n)
	if err != nil {
		return nil, err
	}
	return &HiveLog{t: t, n: n}, nil
}

// Path is the log file on the node.
func (l *HiveLog) Path() string { return l.n.logPath() }

// hiveLogScript prints the log's size, then either its last $3 lines
// ($2 = tail) or the bytes after offset $3 ($2 = from; from 0 when the file
// is now shorter). Both stop at the size printed, so the next read starts
// exactly where this one ended. Exit 3: no log file.
const hiveLogScript = `f=$1 mode=$2 arg=$3
[ -f "$f" ] || exit 3
size=$(wc -c <"$f")
echo "$size"
if [ "$mode" = tail ]; then
  head -c "$size" -- "$f" | tail -n "$arg"
else
  [ "$size" -ge "$arg" ] || arg=0
  tail -c "+$((arg + 1))" -- "$f" | head -c "$((size - arg))"
fi`

// Tail returns the last n lines of the log and the offset where they end.
func (l *HiveLog) Tail(ctx context.Context, n int) ([]byte, int64, error) {
	return l.read(ctx, "tail", int64(n))
}

// From returns what the log gained after offset and the new end offset. A
// log that became shorter (rotated, truncated) is read from its start.
func (l *HiveLog) From(ctx context.Context, offset int64) ([]byte, int64, error) {
	return l.read(ctx, "from", offset)
}

func (l *HiveLog) read(ctx context.Context, mode string, arg int64) ([]byte, int64, error) {
	out, err := l.t.Run(ctx, []string{"sh", "-c", hiveLogScript, "sh", l.n.logPath(), mode, strconv.FormatInt(arg, 10)}, nil)
	var ee *transport.ExitError
	if errors.As(err, &ee) && ee.Code == 3 {
		return nil, 0, fmt.Errorf("node %s has no hive log at %s: the hive was never installed there (run `rbee apply`), or it runs under systemd and logs to the journal (journalctl -u %s)", l.n.Name, l.n.logPath(), l.n.unitName())
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read the hive log of %s: %w", l.n.where(), err)
	}
	first, rest, _ := bytes.Cut(out, []byte("\n"))
	size, err := strconv.ParseInt(string(bytes.TrimSpace(first)), 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("read the hive log of %s: unexpected answer %q", l.n.where(), first)
	}
	return rest, size, nil
}

// Close releases the connection.
func (l *HiveLog) Close() error { return l.t.Close() }

// Package logs shows the logs of a fleet for `rbee logs`: a worker's output
// comes from its hive (GET /v1/workers/{id}/logs), a hive's own log from the
// file it writes on its node (read over SSH, or here for a local node).
// Following polls either one and prints only what is new.
package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/applier"
	"github.com/rbee-dev/rbee/state"
)

// MaxWorkerLines is the most lines a hive keeps of one worker (and answers
// to one request).
const MaxWorkerLines = 1000

// Options say how much to show and how.
type Options struct {
	Tail   int           // last lines to show first (at least 1)
	Follow bool          // then keep printing new lines until ctx ends
	Every  time.Duration // how often to poll when following; 0 means 1 s
	JSON   bool          // one {"source","line"} object per line
}

// Source is the log of one node or worker.
type Source interface {
	// Name is the address the log belongs to.
	Name() string
	// Lines returns the last n lines, and a position to follow from.
	Lines(ctx context.Context, n int) ([]string, error)
	// Since returns the lines written since the last call to Lines or Since.
	Since(ctx context.Context) ([]string, error)
	Close() error
}

// Clients returns the hive client of a node record (with its token).
type Clients func(n *state.NodeRecord) (*hiveapi.Client, error)

// Open finds the log of addr (node.NAME or worker.POOL[NODE/I]) in snap.
func Open(ctx context.Context, snap *state.Snapshot, addr string, clients Clients) (Source, error) {
	a, err := state.ParseAddr(addr)
	if err != nil || a.Kind == state.KindModel {
		return nil, unknown(snap, addr, "has no log")
	}
	n := snap.Node(a.Node)
	if a.Kind == state.KindNode {
		if n == nil {
			return nil, unknown(snap, addr, "is not in the state")
		}
		hl, err := applier.OpenHiveLog(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("the log of %s: %w", addr, err)
		}
		return &hiveSource{name: addr, log: hl}, nil
	}
	w := snap.Worker(a.Pool, a.Node, a.Index)
	if w == nil || n == nil {
		return nil, unknown(snap, addr, "is not in the state")
	}
	if w.ID == "" {
		return nil, fmt.Errorf("%s has no log: its hive never started it (run `rbee apply`)", addr)
	}
	hc, err := clients(n)
	if err != nil {
		return nil, err
	}
	return &workerSource{name: addr, id: w.ID, hive: hc}, nil
}

// unknown says that addr names nothing with a log, and lists what has one.
func unknown(snap *state.Snapshot, addr, why string) error {
	var have []string
	for a := range snap.Nodes {
		have = append(have, a.String())
	}
	sort.Strings(have)
	var workers []state.Addr
	for a := range snap.Workers {
		workers = append(workers, a)
	}
	sort.Slice(workers, func(i, j int) bool { return workers[i].Less(workers[j]) })
	for _, a := range workers {
		have = append(have, a.String())
	}
	if len(have) == 0 {
		return fmt.Errorf("%q %s, and the state records nothing with a log yet: run `rbee apply` first", addr, why)
	}
	return fmt.Errorf("%q %s; the logs are those of %s", addr, why, strings.Join(have, ", "))
}

// Show writes the last opts.Tail lines of src to w, then with opts.Follow
// every new line until ctx ends (which is not an error).
func Show(ctx context.Context, src Source, w io.Writer, opts Options) error {
	lines, err := src.Lines(ctx, max(opts.Tail, 1))
	if err != nil {
		return err
	}
	if err := write(w, src.Name(), lines, opts.JSON); err != nil || !opts.Follow {
		return err
	}
	every := opts.Every
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		lines, err := src.Since(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if err := write(w, src.Name(), lines, opts.JSON); err != nil {
			return err
		}
	}
}

// Line is one line of `rbee logs -json`.
type Line struct {
	Source string `json:"source"`
	Line   string `json:"line"`
}

func write(w io.Writer, source string, lines []string, asJSON bool) error {
	var b bytes.Buffer
	for _, l := range lines {
		if asJSON {
			j, _ := json.Marshal(Line{Source: source, Line: l})
			b.Write(append(j, '\n'))
		} else {
			b.WriteString(l + "\n")
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

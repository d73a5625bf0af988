package reconciler

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// fileWatch reports changes to a configuration file or folder, one signal per
// burst of events once the files have been quiet for the debounce window.
//
// The parent folder is watched rather than the file itself, so the editors
// that save by writing a temporary file and renaming it over the original
// (vim, most IDEs, atomic writers) are seen as well as those that truncate
// and write in place; in a folder, *.hcl files added or removed count too.
type fileWatch struct {
	w        *fsnotify.Watcher
	dir      string // the folder watched
	file     string // the file's base name, or "" for a folder of *.hcl files
	debounce time.Duration
	log      *slog.Logger
	changes  chan time.Time // the time of the first event of each burst
}

// newFileWatch starts watching path (a file or a folder of *.hcl files).
func newFileWatch(path string, debounce time.Duration, log *slog.Logger) (*fileWatch, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	fw := &fileWatch{debounce: debounce, log: log, changes: make(chan time.Time, 1)}
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		fw.dir = abs
	} else {
		fw.dir, fw.file = filepath.Dir(abs), filepath.Base(abs)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watching %s: %w", path, err)
	}
	if err := w.Add(fw.dir); err != nil {
		w.Close()
		return nil, fmt.Errorf("watching folder %s for configuration changes: %w (does it exist and is it readable?)", fw.dir, err)
	}
	fw.w = w
	return fw, nil
}

// relevant reports whether an event on name may change the configuration.
func (fw *fileWatch) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	if filepath.Dir(ev.Name) != fw.dir {
		return false
	}
	base := filepath.Base(ev.Name)
	if fw.file != "" {
		return base == fw.file
	}
	return strings.HasSuffix(base, ".hcl")
}

// run forwards debounced changes to fw.changes until ctx ends, then closes the watcher.
func (fw *fileWatch) run(ctx context.Context) {
	defer fw.w.Close()
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	var first time.Time // first event of the burst in progress; zero when none
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-fw.w.Events:
			if !ok {
				return
			}
			if !fw.relevant(ev) {
				continue
			}
			fw.log.Debug("configuration file event", "file", ev.Name, "op", ev.Op.String())
			if first.IsZero() {
				first = time.Now()
			}
			quiet.Reset(fw.debounce)
		case err, ok := <-fw.w.Errors:
			if !ok {
				return
			}
			// An overflow loses events: treat it as a change so nothing is missed.
			fw.log.Warn("file watcher error; re-reading the configuration to be safe", "err", err)
			if first.IsZero() {
				first = time.Now()
			}
			quiet.Reset(fw.debounce)
		case <-quiet.C:
			select {
			case fw.changes <- first:
			default: // a change is already pending: this burst joins it
			}
			first = time.Time{}
		}
	}
}

package logs

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/applier"
)

// hiveSource is a hive's log file; it follows by byte offset.
type hiveSource struct {
	name   string
	log    *applier.HiveLog
	offset int64
	rest   string // a last line still being written
}

func (s *hiveSource) Name() string { return s.name }

func (s *hiveSource) Lines(ctx context.Context, n int) ([]string, error) {
	b, off, err := s.log.Tail(ctx, n)
	if err != nil {
		return nil, err
	}
	s.offset = off
	lines := s.split(string(b))
	if s.rest != "" { // shown now; what follows it comes as a line of its own
		lines, s.rest = append(lines, s.rest), ""
	}
	return lines, nil
}

func (s *hiveSource) Since(ctx context.Context) ([]string, error) {
	b, off, err := s.log.From(ctx, s.offset)
	if err != nil {
		return nil, err
	}
	if off < s.offset {
		s.rest = "" // the file was truncated: start over
	}
	s.offset = off
	return s.split(string(b)), nil
}

// split returns the complete lines of what was read, keeping an unfinished
// last line for the next read.
func (s *hiveSource) split(text string) []string {
	text = s.rest + text
	i := strings.LastIndexByte(text, '\n')
	if i < 0 {
		s.rest = text
		return nil
	}
	s.rest = text[i+1:]
	return strings.Split(text[:i], "\n")
}

func (s *hiveSource) Close() error { return s.log.Close() }

// workerSource is a worker's output as its hive keeps it: the last lines
// only, so following compares each answer with the one before.
type workerSource struct {
	name string
	id   string
	hive *hiveapi.Client
	last []string // the hive's last answer, up to MaxWorkerLines lines
}

func (s *workerSource) Name() string { return s.name }

func (s *workerSource) Lines(ctx context.Context, n int) ([]string, error) {
	all, err := s.fetch(ctx)
	if err != nil {
		return nil, err
	}
	s.last = all
	return all[max(0, len(all)-n):], nil
}

func (s *workerSource) Since(ctx context.Context) ([]string, error) {
	all, err := s.fetch(ctx)
	if err != nil {
		return nil, err
	}
	fresh := newLines(s.last, all)
	s.last = all
	return fresh, nil
}

func (s *workerSource) fetch(ctx context.Context) ([]string, error) {
	lines, err := s.hive.WorkerLogs(ctx, s.id, MaxWorkerLines)
	if err != nil {
		return nil, fmt.Errorf("the log of %s (worker %s on the hive at %s): %w", s.name, s.id, s.hive.BaseURL, err)
	}
	return lines, nil
}

func (s *workerSource) Close() error { return nil }

// newLines returns the lines of cur that prev had not shown. Both are the
// end of one growing log: cur is prev, less the lines that fell out of the
// window at its start, plus the new ones. The overlap is the longest end of
// prev that cur starts with; with none (more new lines than the window, or a
// log that started over), all of cur is new.
func newLines(prev, cur []string) []string {
	for k := min(len(prev), len(cur)); k > 0; k-- {
		if slices.Equal(prev[len(prev)-k:], cur[:k]) {
			return cur[k:]
		}
	}
	return cur
}

package modellock

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"

	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/digest"
)

// LlamaModule is the Go module that compiles llama.cpp into rbee.
const LlamaModule = "github.com/ollama/ollama"

// BinaryBuild is the llama.cpp build this binary carries, from its Go build
// information; nil when the binary does not link the binding.
func BinaryBuild() *Build {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	for _, d := range info.Deps {
		if d.Path != LlamaModule {
			continue
		}
		if d.Replace != nil {
			d = d.Replace
		}
		return &Build{Module: LlamaModule, Version: d.Version}
	}
	return nil
}

// Options say which models are resolved again.
type Options struct {
	// Upgrade re-resolves entries that still match their model blocks (a
	// branch that moved gets its new commit); without it they are kept.
	Upgrade bool
	// Only limits Upgrade to this model ("" = every model).
	Only string
}

// Kinds of Change.
const (
	Added   = "added"
	Removed = "removed"
	Changed = "changed"
)

// Change is one difference between the old lock and the new one.
type Change struct {
	Subject string   // model name, or "llama_cpp"
	Kind    string   // Added, Removed or Changed
	Details []string // what differs, for Changed
}

func (c Change) String() string {
	switch c.Kind {
	case Added:
		return fmt.Sprintf("+ %s: %s", c.Subject, c.Details[0])
	case Removed:
		return fmt.Sprintf("- %s (no longer in the configuration)", c.Subject)
	}
	s := "~ " + c.Subject + ":"
	for _, d := range c.Details {
		s += "\n    " + d
	}
	return s
}

// Update resolves cfg's models against old (nil: no lock yet) and returns
// the new lock and how it differs from old. Entries that still match their
// model block are kept unless opts says to upgrade them; the rest are
// resolved; entries of removed model blocks are dropped.
func Update(ctx context.Context, r *Resolver, cfg *config.Config, old *Lock, build *Build, opts Options) (*Lock, []Change, error) {
	if old == nil {
		old = &Lock{}
	}
	if opts.Only != "" && cfg.Model(opts.Only) == nil {
		return nil, nil, fmt.Errorf("-upgrade %s: the configuration has no model %q", opts.Only, opts.Only)
	}
	next := &Lock{LlamaCpp: build}
	var changes []Change
	if d := buildDiff(old.LlamaCpp, build); d != "" {
		kind := Changed
		if old.LlamaCpp == nil {
			kind = Added
		}
		changes = append(changes, Change{Subject: "llama_cpp", Kind: kind, Details: []string{d}})
	}
	for _, m := range cfg.Models {
		if cfg.Model(m.Name) != m {
			continue // a duplicate block: validation reports it
		}
		oe := old.Entry(m.Name)
		upgrade := opts.Upgrade && (opts.Only == "" || opts.Only == m.Name)
		if oe != nil && !upgrade && Matches(oe, m) == nil {
			next.Set(*oe)
			continue
		}
		ne, err := r.Resolve(ctx, m)
		if err != nil {
			return nil, nil, err
		}
		if oe != nil && oe.Source == ne.Source && slices.Equal(oe.Files, ne.Files) {
			ne.Generator = oe.Generator // the same bytes: keep who first made them
		}
		next.Set(ne)
		switch {
		case oe == nil:
			changes = append(changes, Change{Subject: m.Name, Kind: Added, Details: []string{summary(ne)}})
		case !oe.Equal(ne):
			changes = append(changes, Change{Subject: m.Name, Kind: Changed, Details: entryDiff(*oe, ne)})
		}
	}
	for _, oe := range old.Models {
		if cfg.Model(oe.Name) == nil {
			changes = append(changes, Change{Subject: oe.Name, Kind: Removed})
		}
	}
	return next, changes, nil
}

func buildDiff(a, b *Build) string {
	switch {
	case a == nil && b == nil:
		return ""
	case a == nil:
		return fmt.Sprintf("llama.cpp build %s %s", b.Module, b.Version)
	case b == nil:
		return "this binary carries no llama.cpp build information"
	case *a != *b:
		return fmt.Sprintf("llama.cpp build %s %s → %s %s", a.Module, a.Version, b.Module, b.Version)
	}
	return ""
}

// summary is one line about a new entry.
func summary(e Entry) string {
	s := e.Source
	if e.Commit != "" {
		s += fmt.Sprintf(" @%s → commit %s", e.Revision, digest.Short(e.Commit))
	}
	if e.Generator != "" {
		s += fmt.Sprintf(" (generator %s, seed %d)", e.Generator, e.Seed)
	}
	for _, f := range e.Files {
		s += fmt.Sprintf(", %s %d bytes sha256 %s…", f.Name, f.Size, digest.Short(f.SHA256))
	}
	return s
}

// entryDiff lists what differs between two entries of one model.
func entryDiff(a, b Entry) []string {
	var out []string
	add := func(field, x, y string) {
		if x != y {
			out = append(out, fmt.Sprintf("%s %s → %s", field, x, y))
		}
	}
	add("source", a.Source, b.Source)
	add("revision", a.Revision, b.Revision)
	add("commit", a.Commit, b.Commit)
	add("generator", a.Generator, b.Generator)
	if a.Seed != b.Seed {
		out = append(out, fmt.Sprintf("seed %d → %d", a.Seed, b.Seed))
	}
	files := map[string]File{}
	for _, f := range a.Files {
		files[f.Name] = f
	}
	for _, f := range b.Files {
		o, ok := files[f.Name]
		delete(files, f.Name)
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("file %s added (%d bytes, sha256 %s…)", f.Name, f.Size, digest.Short(f.SHA256)))
		case o != f:
			out = append(out, fmt.Sprintf("file %s sha256 %s… → %s…, size %d → %d", f.Name, digest.Short(o.SHA256), digest.Short(f.SHA256), o.Size, f.Size))
		}
	}
	for _, f := range a.Files {
		if _, gone := files[f.Name]; gone {
			out = append(out, fmt.Sprintf("file %s removed", f.Name))
		}
	}
	return out
}

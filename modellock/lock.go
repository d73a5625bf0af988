// Package modellock is the model lock file, .rbee.lock.hcl: what exactly
// every model of a configuration resolves to (a Hugging Face commit, the
// size and sha256 of each file, a synth generator and seed), written by
// rbee lock beside the configuration and enforced by plan and apply once
// it exists, the way Terraform's dependency lock file is.
package modellock

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// FileName is the lock file's name, beside the configuration file (or inside
// the configuration folder).
const FileName = ".rbee.lock.hcl"

// Lock is the content of a lock file.
type Lock struct {
	LlamaCpp *Build  // the llama.cpp binding the rbee binary that wrote it carries
	Models   []Entry // sorted by name
}

// Build names the llama.cpp build of an rbee binary: the Go module that
// compiles llama.cpp into it and its version.
type Build struct {
	Module  string
	Version string
}

// Entry is what one model block resolved to.
type Entry struct {
	Name     string
	Source   string // the block's source, as written
	Revision string // hf: the revision the block asks for (default "main")
	Commit   string // hf: the commit the revision pointed to
	// Generator and Seed say how a synth: model is generated.
	Generator string
	Seed      int64
	Files     []File // the block's file first, then any further shards
}

// File is one file of a model with its size and sha256.
type File struct {
	Name   string
	Size   int64
	SHA256 string
}

// Path is the lock file of the configuration at configPath (a file or a
// folder of *.hcl files).
func Path(configPath string) string {
	if fi, err := os.Stat(configPath); err == nil && fi.IsDir() {
		return filepath.Join(configPath, FileName)
	}
	return filepath.Join(filepath.Dir(configPath), FileName)
}

// Entry returns the entry of model name, or nil.
func (l *Lock) Entry(name string) *Entry {
	i, ok := slices.BinarySearchFunc(l.Models, name, func(e Entry, n string) int { return strings.Compare(e.Name, n) })
	if !ok {
		return nil
	}
	return &l.Models[i]
}

// Set adds or replaces the entry e, keeping the models sorted.
func (l *Lock) Set(e Entry) {
	i, ok := slices.BinarySearchFunc(l.Models, e.Name, func(x Entry, n string) int { return strings.Compare(x.Name, n) })
	if ok {
		l.Models[i] = e
		return
	}
	l.Models = slices.Insert(l.Models, i, e)
}

// Primary is the file the model block names (the first of Files), or nil.
func (e *Entry) Primary() *File {
	if len(e.Files) == 0 {
		return nil
	}
	return &e.Files[0]
}

// Equal reports whether two entries lock the same content.
func (e Entry) Equal(o Entry) bool {
	return e.Name == o.Name && e.Source == o.Source && e.Revision == o.Revision && e.Commit == o.Commit &&
		e.Generator == o.Generator && e.Seed == o.Seed && slices.Equal(e.Files, o.Files)
}

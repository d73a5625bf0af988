package modellock

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/agents/hive/modelstore"
)

// MaxBytes bounds the size of a lock file that is read.
const MaxBytes = 4 << 20

var sha256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)

type lockHCL struct {
	LlamaCpp *buildHCL  `hcl:"llama_cpp,block"`
	Models   []entryHCL `hcl:"model,block"`
}

type buildHCL struct {
	Module  string `hcl:"module"`
	Version string `hcl:"version"`
}

type entryHCL struct {
	Name      string    `hcl:"name,label"`
	Source    string    `hcl:"source"`
	Revision  string    `hcl:"revision,optional"`
	Commit    string    `hcl:"commit,optional"`
	Generator string    `hcl:"generator,optional"`
	Seed      int64     `hcl:"seed,optional"`
	Files     []fileHCL `hcl:"file,block"`
	DeclRange hcl.Range `hcl:",def_range"`
}

type fileHCL struct {
	Name      string    `hcl:"name,label"`
	Size      int64     `hcl:"size"`
	SHA256    string    `hcl:"sha256"`
	DeclRange hcl.Range `hcl:",def_range"`
}

// ErrNoLock is returned by Load when there is no lock file.
var ErrNoLock = errors.New("no lock file")

// Load reads the lock file at path; ErrNoLock (wrapped) when it does not exist.
func Load(path string) (*Lock, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrNoLock)
	}
	if err != nil {
		return nil, fmt.Errorf("read the model lock file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("the model lock file %s is not a regular file", path)
	}
	src, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read the model lock file: %w", err)
	}
	return Parse(path, src)
}

// Parse decodes the content of a lock file. Every problem is an error that
// names the file, line and column and says to run rbee lock.
func Parse(filename string, src []byte) (*Lock, error) {
	if len(src) > MaxBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes: it is not a lock file rbee wrote: delete it and run rbee lock", filename, MaxBytes)
	}
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diagError(filename, diags)
	}
	var raw lockHCL
	if diags := gohcl.DecodeBody(file.Body, nil, &raw); diags.HasErrors() {
		return nil, diagError(filename, diags)
	}
	l := &Lock{}
	if raw.LlamaCpp != nil {
		l.LlamaCpp = &Build{Module: raw.LlamaCpp.Module, Version: raw.LlamaCpp.Version}
	}
	for _, m := range raw.Models {
		e, err := m.entry()
		if err != nil {
			return nil, fmt.Errorf("%s: %w; delete the file and run rbee lock to write it again", rangeText(m.DeclRange), err)
		}
		if l.Entry(e.Name) != nil {
			return nil, fmt.Errorf("%s: model %q is locked twice; delete the file and run rbee lock to write it again", rangeText(m.DeclRange), e.Name)
		}
		l.Set(e)
	}
	return l, nil
}

func (m entryHCL) entry() (Entry, error) {
	if err := hiveapi.ValidName("model name", m.Name); err != nil {
		return Entry{}, err
	}
	e := Entry{Name: m.Name, Source: m.Source, Revision: m.Revision, Commit: m.Commit, Generator: m.Generator, Seed: m.Seed}
	if strings.HasPrefix(m.Source, "hf:") && !modelstore.IsCommit(m.Commit) {
		return Entry{}, fmt.Errorf("model %q: commit %q is not a 40-digit lowercase hexadecimal commit id", m.Name, m.Commit)
	}
	for _, f := range m.Files {
		if f.Name == "" || strings.ContainsFunc(f.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return Entry{}, fmt.Errorf("%s: model %q: a file name must be plain text", rangeText(f.DeclRange), m.Name)
		}
		if !sha256Re.MatchString(f.SHA256) {
			return Entry{}, fmt.Errorf("%s: model %q file %q: sha256 %q is not 64 lowercase hexadecimal digits", rangeText(f.DeclRange), m.Name, f.Name, f.SHA256)
		}
		if f.Size < 0 {
			return Entry{}, fmt.Errorf("%s: model %q file %q: size %d is negative", rangeText(f.DeclRange), m.Name, f.Name, f.Size)
		}
		e.Files = append(e.Files, File{Name: f.Name, Size: f.Size, SHA256: f.SHA256})
	}
	if len(e.Files) == 0 && !strings.HasPrefix(m.Source, "file:") {
		return Entry{}, fmt.Errorf("model %q has no file block", m.Name)
	}
	return e, nil
}

func rangeText(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

// diagError is the first error of diags with its position.
func diagError(filename string, diags hcl.Diagnostics) error {
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		where := filename
		if d.Subject != nil {
			where = rangeText(*d.Subject)
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		return fmt.Errorf("%s: %s (the model lock file is written by rbee lock: delete it and run rbee lock to write it again)", where, msg)
	}
	return fmt.Errorf("%s: invalid model lock file", filename)
}

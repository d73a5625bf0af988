package modellock

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/agents/hive/modelstore"
	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/state"
)

// MismatchError is a configuration the lock file does not cover: models it
// lacks, or whose entry no longer matches the model block.
type MismatchError struct {
	Path     string
	Problems []string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("the model lock file %s does not match the configuration:\n  %s\nrun rbee lock to update it (rbee lock -upgrade re-resolves moving revisions)",
		filepath.Base(e.Path), strings.Join(e.Problems, "\n  "))
}

// ForConfig reads the lock file beside cfg and checks every model block of
// cfg against it. Without a lock file it returns nil and no error: nothing
// is enforced until rbee lock writes one. The lock's Pin then turns the
// desired model records into exactly what is locked.
func ForConfig(cfg *config.Config) (*Lock, error) {
	if cfg == nil || cfg.Path == "" {
		return nil, nil
	}
	path := Path(cfg.Path)
	l, err := Load(path)
	if errors.Is(err, ErrNoLock) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, m := range cfg.Models {
		e := l.Entry(m.Name)
		if e == nil {
			problems = append(problems, fmt.Sprintf("model %q is not in the lock", m.Name))
			continue
		}
		if err := Matches(e, m); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return nil, &MismatchError{Path: path, Problems: problems}
	}
	return l, nil
}

// Matches reports, as an error, how the entry e no longer matches the model
// block m (its source, revision, file or sha256 pin changed); nil when it does.
func Matches(e *Entry, m *config.Model) error {
	if e.Source != m.Source {
		return fmt.Errorf("model %q: the block's source is %s but the lock has %s", m.Name, m.Source, e.Source)
	}
	ref, err := modelstore.ParseRef(hiveapi.ModelSpec{Source: m.Source, File: m.File, Revision: m.Revision, SHA256: m.SHA256})
	if err != nil {
		return fmt.Errorf("model %q: %w", m.Name, err)
	}
	if ref.Provider == modelstore.ProviderHF && e.Revision != ref.Revision {
		return fmt.Errorf("model %q: the block's revision is %s but the lock resolved %s", m.Name, ref.Revision, e.Revision)
	}
	want := ref.File
	if ref.Provider == modelstore.ProviderSynth {
		want = ref.Preset + ".gguf"
	}
	p := e.Primary()
	switch {
	case ref.Provider == modelstore.ProviderFile:
		return nil
	case p == nil:
		return fmt.Errorf("model %q: the lock has no file for it", m.Name)
	case p.Name != want:
		return fmt.Errorf("model %q: the block's file is %s but the lock has %s", m.Name, want, p.Name)
	case ref.SHA256 != "" && ref.SHA256 != p.SHA256:
		return fmt.Errorf("model %q: the block pins sha256 %s but the lock has %s", m.Name, ref.SHA256, p.SHA256)
	}
	return nil
}

// Pin turns a desired model record into exactly what the lock names: a
// Hugging Face revision becomes the locked commit, and the locked sha256
// becomes the pin the hive verifies. A model the lock lacks is an error.
func (l *Lock) Pin(r *state.ModelRecord) error {
	if l.Entry(r.Name) == nil {
		return fmt.Errorf("model %q is not in the model lock file: run rbee lock", r.Name)
	}
	commit, sum := l.Pinned(r.Name)
	if commit != "" {
		r.Revision = commit
	}
	if sum != "" {
		r.SHA256 = sum
	}
	return nil
}

// Pinned is the commit and the (first) file's sha256 the lock pins for the
// model name; "" for what it does not pin.
func (l *Lock) Pinned(name string) (commit, sha256 string) {
	e := l.Entry(name)
	if e == nil {
		return "", ""
	}
	if p := e.Primary(); p != nil {
		sha256 = p.SHA256
	}
	return e.Commit, sha256
}

package planner

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rbee-dev/rbee/state"
)

// PlanFileFormat is the version of the plan files this rbee writes.
const PlanFileFormat = 1

// ErrStalePlan is wrapped by Stale when a plan no longer fits the state or configuration.
var ErrStalePlan = errors.New("stale plan")

type planFile struct {
	Format      int       `json:"format_version"`
	Lineage     string    `json:"lineage"`
	Serial      uint64    `json:"serial"`
	ConfigHash  string    `json:"config_hash"`
	Destroy     bool      `json:"destroy"`
	RefreshOnly bool      `json:"refresh_only"`
	Refreshed   bool      `json:"refreshed"`
	Targets     []string  `json:"targets"`
	Warnings    []string  `json:"warnings"`
	CreatedAt   time.Time `json:"created_at"`
	Changes     []*Change `json:"changes"`
	Drift       []*Change `json:"drift"`
}

// WritePlanFile saves p to path (JSON, mode 0600, written atomically).
func WritePlanFile(path string, p *Plan) error {
	f := planFile{Format: PlanFileFormat, Lineage: p.Lineage, Serial: p.Serial, ConfigHash: p.ConfigHash, Destroy: p.Destroy,
		RefreshOnly: p.RefreshOnly, Refreshed: p.Refreshed, Targets: p.Targets, Warnings: p.Warnings, CreatedAt: p.CreatedAt,
		Changes: p.Changes, Drift: p.Drift}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".plan-*")
	if err != nil {
		return fmt.Errorf("writing plan file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("writing plan file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing plan file %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing plan file %s: %w", path, err)
	}
	return nil
}

// ReadPlanFile loads a plan written by WritePlanFile.
func ReadPlanFile(path string) (*Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading plan file: %w", err)
	}
	var f planFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s is not an rbee plan file: %v. Create one with rbee plan -out FILE", path, err)
	}
	if f.Format < 1 {
		return nil, fmt.Errorf("%s is not an rbee plan file (no format_version). Create one with rbee plan -out FILE", path)
	}
	if f.Format > PlanFileFormat {
		return nil, fmt.Errorf("plan file %s has format %d, written by a newer rbee; this rbee reads format %d", path, f.Format, PlanFileFormat)
	}
	return &Plan{Lineage: f.Lineage, Serial: f.Serial, ConfigHash: f.ConfigHash, Destroy: f.Destroy, RefreshOnly: f.RefreshOnly,
		Refreshed: f.Refreshed, Targets: f.Targets, Warnings: f.Warnings, CreatedAt: f.CreatedAt, Changes: f.Changes, Drift: f.Drift}, nil
}

// Stale reports (wrapping ErrStalePlan) whether the plan no longer fits:
// the state was written since it was made (serial), it belongs to another
// state (lineage), or — when configHash is not empty — the configuration
// changed. Apply calls it with the lock held and refuses a stale plan.
func (p *Plan) Stale(snap *state.Snapshot, configHash string) error {
	const fix = "run rbee plan -out FILE again"
	switch {
	case p.Lineage != "" && snap.Lineage != p.Lineage:
		return fmt.Errorf("%w: it was made for state lineage %s, but the state is lineage %s; %s", ErrStalePlan, p.Lineage, snap.Lineage, fix)
	case snap.Serial != p.Serial:
		return fmt.Errorf("%w: the state changed since the plan was made (serial %d, now %d); %s", ErrStalePlan, p.Serial, snap.Serial, fix)
	case configHash != "" && p.ConfigHash != "" && configHash != p.ConfigHash:
		return fmt.Errorf("%w: the configuration changed since the plan was made; %s", ErrStalePlan, fix)
	}
	return nil
}

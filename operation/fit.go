package operation

import (
	"context"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/fit"
	"github.com/rbee-dev/rbee/planner"
)

// checkFit adds the fit check's lines and warnings to p and fails when a
// node cannot hold its workers. It uses the hive states the plan's refresh
// read (resources and catalogs); without a refresh every node is unknown.
func (b *Backend) checkFit(ctx context.Context, cfg *config.Config, p *planner.Plan, refresher planner.Refresher) error {
	hives := map[string]*hiveapi.State{}
	if hs, ok := refresher.(interface {
		HiveStates() map[string]*hiveapi.State
	}); ok && p.Live != nil {
		hives = hs.HiveStates()
	}
	r := fit.Check(ctx, fit.Input{Config: cfg, Hives: hives})
	p.Resources = r.Lines
	p.Warnings = append(p.Warnings, r.Warnings...)
	return r.Err()
}

package operation

import (
	"context"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/fit"
	"github.com/rbee-dev/rbee/modellock"
	"github.com/rbee-dev/rbee/planner"
)

// checkFit adds the fit check's lines and warnings to p and fails when a
// node cannot hold its workers. It uses the hive states the plan's refresh
// read (resources and catalogs); without a refresh every node is unknown.
// A header read at a model's source is kept in the state when the lock
// (may be nil) or the model block names the file's content (fit.Headers).
func (b *Backend) checkFit(ctx context.Context, cfg *config.Config, p *planner.Plan, refresher planner.Refresher, lock *modellock.Lock) error {
	hives := map[string]*hiveapi.State{}
	if hs, ok := refresher.(interface {
		HiveStates() map[string]*hiveapi.State
	}); ok && p.Live != nil {
		hives = hs.HiveStates()
	}
	headers := &fit.Headers{}
	headers.Store, _ = b.State.(fit.HeaderStore)
	if lock != nil {
		headers.Locked = lock.Pinned
	}
	r := fit.Check(ctx, fit.Input{Config: cfg, Hives: hives, Headers: headers})
	p.Resources = r.Lines
	p.Warnings = append(p.Warnings, r.Warnings...)
	return r.Err()
}

package operation

import (
	"context"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/applier"
	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/fit"
	"github.com/rbee-dev/rbee/planner"
	"github.com/rbee-dev/rbee/state"
)

// checkFit adds the fit check's lines and warnings to p and fails when a
// node cannot hold its workers. It asks the hives of the refreshed state
// for their resources and catalogs; without a refresh every node is unknown.
func (b *Backend) checkFit(ctx context.Context, cfg *config.Config, p *planner.Plan) error {
	hives := map[string]*hiveapi.State{}
	if p.Live != nil {
		var nodes []*state.NodeRecord
		for _, n := range p.Live.Nodes {
			if n.Status != state.NodeUnreachable {
				nodes = append(nodes, n)
			}
		}
		for name, l := range applier.NewRefresher(b.State).Query(ctx, nodes) {
			if l.State != nil {
				hives[name] = l.State
			}
		}
	}
	r := fit.Check(ctx, fit.Input{Config: cfg, Hives: hives})
	p.Resources = r.Lines
	p.Warnings = append(p.Warnings, r.Warnings...)
	return r.Err()
}

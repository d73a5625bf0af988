package operation

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/planner"
	"github.com/rbee-dev/rbee/state"
)

// orphanProbe bounds how long the empty-state check waits for hives.
const orphanProbe = 2 * time.Second

// warnOrphans warns when the state is empty but hives of the configuration
// already answer: the state folder was probably deleted, and applying would
// install those hives again and restart what they run.
func warnOrphans(ctx context.Context, cfg *config.Config, snap *state.Snapshot, p *planner.Plan) {
	if cfg == nil || snap.Len() > 0 || len(cfg.Nodes) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, orphanProbe)
	defer cancel()
	var (
		mu    sync.Mutex
		found []string
		wg    sync.WaitGroup
		sem   = make(chan struct{}, 32)
	)
	for _, n := range cfg.Nodes {
		url := planner.HiveURL(n.Connection == config.ConnectionLocal, n.Host, n.HivePort)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			// A hive that wants a token still answers 401: it is there.
			if _, err := hiveapi.NewClient(url, "").Health(ctx); err == nil || api.HasStatus(err, http.StatusUnauthorized) {
				mu.Lock()
				found = append(found, fmt.Sprintf("node.%s (%s)", n.Name, url))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(found) == 0 {
		return
	}
	slices.Sort(found)
	p.Warnings = append(p.Warnings, fmt.Sprintf("the state is empty, but the hive of %s already answers: was the state folder deleted? "+
		"Applying would install those hives again and restart what they run. Put a saved state back with rbee state restore FILE, "+
		"or stop those hives first.", strings.Join(found, ", ")))
}

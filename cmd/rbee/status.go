package main

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/applier"
	"github.com/rbee-dev/rbee/state"
	"github.com/rbee-dev/rbee/status"
)

// clearScreen moves the cursor home and clears a terminal before a redraw.
const clearScreen = "\x1b[H\x1b[2J"

func newStatusCmd() *cobra.Command {
	var (
		asJSON   bool
		watch    bool
		interval time.Duration
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status [--json] [--watch]",
		Short: "Show the live fleet: every node's hive and workers, asked now",
		Long: `Ask every node the state records for its hive's live state, and every
worker for its readiness and counters, all at once with a short timeout, and
print one table: node, hive version (or unreachable), each worker's state,
model, backend, busy/total slots, tokens per second and restarts.

Unreachable nodes are shown with their recorded workers as "unknown" and a
line that says why; a worker the state records but its hive does not run is
"missing" (run rbee plan). Tokens per second come from the workers'
generated-token counters over the last minute (a worker counts a request's
tokens when it finishes), so they need samples over time: --watch shows them
from its second drawing on. When the configuration has a gateway block, a
line under the table gives the gateway's queue depth per pool or model (its
/metrics, with $RBEE_API_KEY as the key when it needs one).

--watch redraws every 2 s (--interval) until Ctrl-C, which exits 0. --json
writes the report as one JSON object (one per line with --watch). Colour
is used only on a terminal.

Exit status: 0 when the report is printed (unreachable nodes included), 1
when the state cannot be read.`,
		Example: `  rbee status
  rbee status --watch
  rbee status --json | jq '.nodes[] | select(.reachable | not) | .name'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval <= 0 || timeout <= 0 {
				return exitCode(1, errors.New("--interval and --timeout must be positive durations, e.g. 2s"))
			}
			return runStatus(cmd, asJSON, watch, interval, timeout)
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&asJSON, "json", false, "write the report as JSON (NDJSON with --watch)")
	fs.BoolVar(&watch, "watch", false, "redraw until Ctrl-C")
	fs.DurationVar(&interval, "interval", 2*time.Second, "time between drawings with --watch")
	fs.DurationVar(&timeout, "timeout", status.DefaultTimeout, "how long to wait for each hive and worker")
	addFleetFlags(cmd)
	return cmd
}

func runStatus(cmd *cobra.Command, asJSON, watch bool, interval, timeout time.Duration) error {
	st, err := openState(cmd)
	if err != nil {
		return err
	}
	tokens := applier.TokensOf(st)
	g := &status.Gatherer{
		Hive:       func(n *state.NodeRecord) (*hiveapi.Client, error) { return tokens.Client(n) },
		Timeout:    timeout,
		GatewayURL: gatewayURL(cmd), GatewayKey: os.Getenv("RBEE_API_KEY"),
	}
	out := cmd.OutOrStdout()
	color := !asJSON && colorFor(cmd, out)
	draw := func(ctx context.Context) error {
		snap, err := st.Snapshot(ctx)
		if err != nil {
			return exitCode(1, err)
		}
		rep := g.Gather(ctx, snap)
		if ctx.Err() != nil {
			return nil // interrupted while asking: draw nothing half-known
		}
		if asJSON {
			return status.WriteJSON(out, rep)
		}
		if watch && color {
			_, _ = io.WriteString(out, clearScreen)
		} else if watch {
			_, _ = io.WriteString(out, "\n"+rep.Time.Format(time.TimeOnly)+"\n")
		}
		return status.WriteTable(out, rep, color)
	}
	if !watch {
		return draw(cmd.Context())
	}
	g.Rates = status.NewRates()
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if err := draw(ctx); err != nil && ctx.Err() == nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil // Ctrl-C ends the watch: a normal exit
		case <-tick.C:
		}
	}
}

// gatewayURL is where the configuration's gateway block serves, or "" when
// there is no such block (or the configuration does not load).
func gatewayURL(cmd *cobra.Command) string {
	cfg := quietConfig(cmd)
	if cfg == nil || cfg.Gateway == nil {
		return ""
	}
	host, port, err := net.SplitHostPort(cfg.Gateway.Listen)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

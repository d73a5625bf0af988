package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rbee-dev/rbee/operation"
	"github.com/rbee-dev/rbee/planner"
)

// planFlags are rbee plan's own flags.
type planFlags struct {
	detailed, asJSON, destroy, refresh, refreshOnly bool
	out                                             string
	targets                                         []string
}

func newPlanCmd() *cobra.Command {
	var f planFlags
	cmd := &cobra.Command{
		Use: "plan",
		Example: `  rbee plan
  rbee plan -detailed-exitcode             # CI: 0 no changes, 1 error, 2 changes
  rbee plan -refresh-only -detailed-exitcode -lock=false   # drift check beside rbee watch
  rbee plan -out fleet.plan && rbee apply fleet.plan
  rbee plan -target pool.chat -json`,
		Short: "Show what apply would change",
		Long: `Compare the configuration with the state (refreshed from the live hives
unless -refresh=false) and show what apply would do:

  +   create            ~   update in place
  -/+ replace           -   delete
  +/- replace, the new one first (a serving worker: it drains only once
      its replacement is ready, and a pool's replicas roll one at a time)

Each line gives the reasons ("ctx_size 2048 → 4096", "worker crashed").

  -detailed-exitcode   exit 0 no changes, 1 error, 2 changes present (for CI)
  -json                NDJSON: one object per change, then {"type":"summary",...}
  -out FILE            save the plan; rbee apply FILE refuses it once the state changed
  -target ADDR         only node.N, model.M, model.M@N, pool.P or worker.P[N/I] (repeatable)
  -destroy             plan deleting everything rbee manages
  -refresh-only        only report what changed outside of rbee`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPlan(cmd, f) },
	}
	fs := cmd.Flags()
	fs.BoolVar(&f.detailed, "detailed-exitcode", false, "exit 0 when there are no changes, 1 on error, 2 when there are changes")
	fs.BoolVar(&f.asJSON, "json", false, "print NDJSON: one object per change, then a summary object")
	fs.StringVar(&f.out, "out", "", "save the plan to FILE for rbee apply FILE")
	fs.StringArrayVar(&f.targets, "target", nil, "limit the plan to an address (node.N, model.M, model.M@N, pool.P, worker.P[N/I]) and its dependencies; repeatable")
	fs.BoolVar(&f.destroy, "destroy", false, "plan deleting everything in the state")
	fs.BoolVar(&f.refresh, "refresh", true, "refresh the state from the live hives before planning")
	fs.BoolVar(&f.refreshOnly, "refresh-only", false, "only report what changed outside of rbee")
	fs.Bool("no-color", false, "never colour the output")
	addVarFlags(fs)
	addLockFlags(fs)
	return cmd
}

// runPlan plans through the operation layer and renders the plan.
func runPlan(cmd *cobra.Command, f planFlags) error {
	f.refresh = mustSettings(cmd).GetBool("refresh")
	if f.refreshOnly && !f.refresh {
		return exitCode(1, errors.New("-refresh-only and -refresh=false contradict each other: a refresh-only plan needs the refresh"))
	}
	if f.refreshOnly && f.destroy {
		return exitCode(1, errors.New("-refresh-only and -destroy cannot be combined"))
	}
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	b, err := newBackend(cmd)
	if err != nil {
		return err
	}
	res, err := runOperation(cmd, b, operation.Request{Kind: operation.Plan, Config: cfg, Destroy: f.destroy,
		RefreshOnly: f.refreshOnly, NoRefresh: !f.refresh, Targets: f.targets, Lock: lockPolicy(cmd)})
	if err != nil {
		return asExit(err)
	}
	p, out := res.Plan, cmd.OutOrStdout()
	if f.asJSON {
		err = planner.RenderJSON(out, p)
	} else {
		err = planner.Render(out, p, planner.RenderOptions{Color: colorFor(cmd, out)})
	}
	if err != nil {
		return exitCode(1, err)
	}
	if f.out != "" {
		if err := planner.WritePlanFile(f.out, p); err != nil {
			return exitCode(1, err)
		}
		if !f.asJSON {
			fmt.Fprintf(out, "\nSaved the plan to %s. Apply exactly these actions with: rbee apply %s\n", f.out, f.out)
		}
	}
	if f.detailed && (p.HasChanges() || p.Degraded()) {
		return exitCode(2, nil)
	}
	return nil
}

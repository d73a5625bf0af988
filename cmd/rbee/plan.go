package main

import (
	"errors"
	"fmt"

	"github.com/rbee-dev/rbee/operation"
	"github.com/rbee-dev/rbee/planner"
	"github.com/spf13/cobra"
)

func newPlanCmd() *cobra.Command {
	var (
		detailed, asJSON, destroy, refresh, refreshOnly bool
		out                                             string
		targets                                         []string
	)
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

Each line gives the reasons ("ctx_size 2048 → 4096", "worker crashed").

  -detailed-exitcode   exit 0 no changes, 1 error, 2 changes present (for CI)
  -json                NDJSON: one object per change, then {"type":"summary",...}
  -out FILE            save the plan; rbee apply FILE refuses it once the state changed
  -target ADDR         only node.N, model.M, model.M@N, pool.P or worker.P[N/I] (repeatable)
  -destroy             plan deleting everything rbee manages
  -refresh-only        only report what changed outside of rbee`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := mustSettings(cmd)
			refresh = v.GetBool("refresh")
			if refreshOnly && !refresh {
				return exitCode(1, errors.New("-refresh-only and -refresh=false contradict each other: a refresh-only plan needs the refresh"))
			}
			if refreshOnly && destroy {
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
			res, err := runOperation(cmd, b, operation.Request{Kind: operation.Plan, Config: cfg, Destroy: destroy,
				RefreshOnly: refreshOnly, NoRefresh: !refresh, Targets: targets, Lock: lockPolicy(cmd)})
			if err != nil {
				return asExit(err)
			}
			p := res.Plan
			if asJSON {
				err = planner.RenderJSON(cmd.OutOrStdout(), p)
			} else {
				err = planner.Render(cmd.OutOrStdout(), p, planner.RenderOptions{Color: colorFor(cmd, cmd.OutOrStdout())})
			}
			if err != nil {
				return exitCode(1, err)
			}
			if out != "" {
				if err := planner.WritePlanFile(out, p); err != nil {
					return exitCode(1, err)
				}
				if !asJSON {
					fmt.Fprintf(cmd.OutOrStdout(), "\nSaved the plan to %s. Apply exactly these actions with: rbee apply %s\n", out, out)
				}
			}
			if detailed && p.HasChanges() {
				return exitCode(2, nil)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&detailed, "detailed-exitcode", false, "exit 0 when there are no changes, 1 on error, 2 when there are changes")
	fs.BoolVar(&asJSON, "json", false, "print NDJSON: one object per change, then a summary object")
	fs.StringVar(&out, "out", "", "save the plan to FILE for rbee apply FILE")
	fs.StringArrayVar(&targets, "target", nil, "limit the plan to an address (node.N, model.M, model.M@N, pool.P, worker.P[N/I]) and its dependencies; repeatable")
	fs.BoolVar(&destroy, "destroy", false, "plan deleting everything in the state")
	fs.BoolVar(&refresh, "refresh", true, "refresh the state from the live hives before planning")
	fs.BoolVar(&refreshOnly, "refresh-only", false, "only report what changed outside of rbee")
	fs.Bool("no-color", false, "never colour the output")
	addVarFlags(fs)
	addLockFlags(fs)
	return cmd
}

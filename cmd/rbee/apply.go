package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rbee-dev/rbee/applier"
	"github.com/rbee-dev/rbee/operation"
	"github.com/rbee-dev/rbee/planner"
	"github.com/rbee-dev/rbee/state"
)

// applyCommands are apply, destroy and refresh.
func applyCommands() []*cobra.Command {
	cmds := []*cobra.Command{newApplyCmd(), newDestroyCmd(), newRefreshCmd()}
	for _, c := range cmds {
		addFleetFlags(c)
	}
	return cmds
}

// applyFlags are the flags apply and destroy share.
type applyFlags struct {
	autoApprove bool
	refresh     bool
	targets     []string
}

func addApplyFlags(cmd *cobra.Command, f *applyFlags) {
	fs := cmd.Flags()
	fs.BoolVar(&f.autoApprove, "auto-approve", false, "do not ask for confirmation")
	fs.Int("parallelism", applier.DefaultParallelism, "how many changes run at once (nodes in parallel)")
	fs.BoolVar(&f.refresh, "refresh", true, "refresh the state from the live hives before planning")
	fs.Bool("no-color", false, "never colour the output")
	addVarFlags(fs)
	addLockFlags(fs)
}

func newApplyCmd() *cobra.Command {
	var f applyFlags
	cmd := &cobra.Command{
		Use: "apply [PLANFILE]",
		Example: `  rbee apply                               # refresh, plan, ask, apply
  rbee apply -auto-approve                 # no question (CI)
  rbee apply -target pool.chat             # only the chat pool and what it needs
  rbee plan -out fleet.plan && rbee apply fleet.plan   # exactly the reviewed plan`,
		Short: "Make the fleet match the configuration",
		Long: `Make the fleet match the configuration: install or upgrade hives over SSH
(or on this machine), provision models, start and stop workers.

Without PLANFILE, apply refreshes the state from the hives, plans, shows the
plan and asks for confirmation (-auto-approve skips the question). With a plan
file written by rbee plan -out FILE it executes exactly that plan, and refuses
it if the state or the configuration changed since.

Changes run as a graph: on each node the hive comes first, then its models,
then its workers; nodes run in parallel (-parallelism, default 10). Every
finished change is recorded in the state at once. A failed change stops only
what depends on it. Ctrl-C lets the changes in flight finish and record, then
exits with status 130.

Exit status: 0 applied, 1 error or a change failed, 130 interrupted.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkParallelism(cmd); err != nil {
				return err
			}
			if len(args) == 1 {
				return applyPlanFile(cmd, args[0])
			}
			return planAndApply(cmd, f, false)
		},
	}
	addApplyFlags(cmd, &f)
	cmd.Flags().StringArrayVar(&f.targets, "target", nil, "limit apply to an address (node.N, model.M, model.M@N, pool.P, worker.P[N/I]) and its dependencies; repeatable")
	return cmd
}

func newDestroyCmd() *cobra.Command {
	var f applyFlags
	cmd := &cobra.Command{
		Use: "destroy",
		Example: `  rbee destroy                             # show what goes, then ask
  rbee destroy -auto-approve               # no question`,
		Short: "Stop and remove everything rbee manages",
		Long: `Stop every worker, remove the models rbee provisioned, stop and uninstall
every hive (removing its install dir), and empty the state. Asks for
confirmation unless -auto-approve.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkParallelism(cmd); err != nil {
				return err
			}
			return planAndApply(cmd, f, true)
		},
	}
	addApplyFlags(cmd, &f)
	return cmd
}

func newRefreshCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use: "refresh",
		Example: `  rbee refresh                             # record what really runs
  rbee plan -refresh-only                  # only show the drift, record nothing`,
		Short: "Update the state from the live hives",
		Long: `Ask every hive in the state for what really runs (GET /v1/state) and
record it: unreachable nodes, crashed or failed workers, deleted or changed
model files, replaced hive binaries. Nothing on the nodes is changed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := newBackend(cmd)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			res, err := runOperation(cmd, b, operation.Request{Kind: operation.Refresh, Lock: lockPolicy(cmd),
				OnPlan: func(p *planner.Plan) error {
					return planner.Render(out, p, planner.RenderOptions{Color: colorFor(cmd, out), Recording: true})
				}})
			if err != nil {
				return asExit(err)
			}
			unreachable := 0
			for _, c := range res.Plan.Drift {
				if n, ok := c.After.(*state.NodeRecord); ok && n.Status == state.NodeUnreachable {
					unreachable++
				}
			}
			fmt.Fprintf(out, "\nRecorded %d change(s) in the state (%d records checked)", len(res.Recorded), res.Plan.Live.Len())
			if unreachable > 0 {
				fmt.Fprintf(out, "; %d node(s) unreachable", unreachable)
			}
			fmt.Fprintln(out, ".")
			return nil
		},
	}
	cmd.Flags().Bool("no-color", false, "never colour the output")
	addLockFlags(cmd.Flags())
	return cmd
}

// checkParallelism refuses a -parallelism below 1, which would run nothing.
func checkParallelism(cmd *cobra.Command) error {
	if n := mustSettings(cmd).GetInt("parallelism"); n < 1 {
		return exitCode(1, fmt.Errorf("-parallelism must be at least 1, got %d", n))
	}
	return nil
}

// planAndApply plans (a destroy plan when destroy is set), shows the plan,
// asks, and applies it, all under the state lock.
func planAndApply(cmd *cobra.Command, f applyFlags, destroy bool) error {
	req := operation.Request{Kind: operation.Apply, Targets: f.targets}
	if destroy {
		req.Kind = operation.Destroy
	} else {
		cfg, err := loadConfig(cmd)
		if err != nil {
			return err
		}
		req.Config = cfg
	}
	b, err := newBackend(cmd)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	req.NoRefresh = !mustSettings(cmd).GetBool("refresh") || !f.refresh
	req.Lock = lockPolicy(cmd)
	req.OnPlan = func(p *planner.Plan) error {
		return planner.Render(out, p, planner.RenderOptions{Color: colorFor(cmd, out)})
	}
	if !f.autoApprove {
		req.Approve = func(ctx context.Context, _ *planner.Plan) error { return confirm(ctx, cmd, destroy) }
	}
	return executed(cmd, b, req)
}

// confirm asks whether to go ahead and returns nil for "yes"; the context
// ending (Ctrl-C at the prompt) stops the wait.
func confirm(ctx context.Context, cmd *cobra.Command, destroy bool) error {
	question := "Do you want to perform these actions?\n  rbee will perform the actions described above.\n  Only 'yes' will be accepted to approve."
	if destroy {
		question = "Do you really want to destroy everything rbee manages?\n  Every worker, model and hive in the state will be removed.\n  Only 'yes' will be accepted to confirm."
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "\n%s\n\n  Enter a value: ", question)
	answer := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
		answer <- line
	}()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case line := <-answer:
		fmt.Fprintln(out)
		if strings.TrimSpace(line) != "yes" {
			return errors.New("apply cancelled: nothing was changed")
		}
		return nil
	}
}

// applyPlanFile executes a saved plan after checking it is not stale.
func applyPlanFile(cmd *cobra.Command, path string) error {
	p, err := planner.ReadPlanFile(path)
	if err != nil {
		return exitCode(1, err)
	}
	if p.RefreshOnly {
		return exitCode(1, fmt.Errorf("%s is a refresh-only plan: record drift with rbee refresh instead", path))
	}
	hash := ""
	cfg := quietConfig(cmd)
	if cfg != nil {
		hash = cfg.Hash()
	}
	if err := p.RestoreEnv(cfg); err != nil { // plan files never hold env values
		return exitCode(1, fmt.Errorf("refusing to apply %s: %w", path, err))
	}
	b, err := newBackend(cmd)
	if err != nil {
		return err
	}
	err = executed(cmd, b, operation.Request{Kind: operation.Apply, Saved: p, ConfigHash: hash, Lock: lockPolicy(cmd)})
	var stale *operation.StaleError
	if errors.As(err, &stale) {
		return exitCode(1, fmt.Errorf("refusing to apply %s: %w", path, stale.Err))
	}
	return err
}

// executed runs an apply or destroy operation and prints its outcome.
func executed(cmd *cobra.Command, b *operation.Backend, req operation.Request) error {
	out := cmd.OutOrStdout()
	req.Out = out
	req.Parallelism = mustSettings(cmd).GetInt("parallelism")
	req.OnApply = func(*planner.Plan) { fmt.Fprintln(out) }
	res, err := runOperation(cmd, b, req)
	var stale *operation.StaleError
	if errors.As(err, &stale) {
		return err
	}
	if err != nil {
		return asExit(err)
	}
	applied := res.Applied
	if applied == nil {
		if req.Saved == nil {
			fmt.Fprintln(out)
		}
		fmt.Fprintln(out, (&applier.Result{}).Summary())
		return nil
	}
	if err := applied.Err(); err != nil {
		fmt.Fprintln(out)
		if applied.Interrupted {
			return exitCode(130, err)
		}
		return exitCode(1, err)
	}
	if res.Plan.Destroy {
		fmt.Fprintf(out, "\nDestroy complete! Resources: %d destroyed.\n", applied.Destroyed)
		return nil
	}
	fmt.Fprintf(out, "\n%s\n", applied.Summary())
	return nil
}

// asExit gives err exit status 1 unless it carries one.
func asExit(err error) error {
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return exitCode(1, err)
}

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rbee-dev/rbee/applier"
	"github.com/rbee-dev/rbee/config"
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
			st, snap, lock, err := lockedSnapshot(cmd, "refresh")
			if err != nil {
				return err
			}
			defer lock.Release()
			p, err := planner.Make(cmd.Context(), nil, snap, planner.Options{RefreshOnly: true, Refresher: applier.NewRefresher(st.Dir())})
			if err != nil {
				return exitCode(1, err)
			}
			if err := planner.Render(cmd.OutOrStdout(), p, planner.RenderOptions{Color: colorFor(cmd, cmd.OutOrStdout()), Recording: true}); err != nil {
				return exitCode(1, err)
			}
			records, err := recordRefresh(cmd, st, snap, p)
			if err != nil {
				return err
			}
			unreachable := 0
			for _, c := range p.Drift {
				if n, ok := c.After.(*state.NodeRecord); ok && n.Status == state.NodeUnreachable {
					unreachable++
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\nRecorded %d change(s) in the state (%d records checked)", len(records), snap.Len())
			if unreachable > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "; %d node(s) unreachable", unreachable)
			}
			fmt.Fprintln(cmd.OutOrStdout(), ".")
			return nil
		},
	}
	cmd.Flags().Bool("no-color", false, "never colour the output")
	addLockFlags(cmd.Flags())
	return cmd
}

// recordRefresh writes what the refresh before p learned (a restarted
// worker's pid and port, a model whose download finished) to the state and
// returns the records it wrote (none when p was not refreshed).
func recordRefresh(cmd *cobra.Command, st *state.Store, recorded *state.Snapshot, p *planner.Plan) ([]state.Record, error) {
	if p.Live == nil {
		return nil, nil
	}
	records := applier.Changed(recorded, p.Live)
	if len(records) == 0 {
		return nil, nil
	}
	if err := st.Put(cmd.Context(), records...); err != nil {
		return nil, exitCode(1, fmt.Errorf("recording the refreshed state: %w", err))
	}
	return records, nil
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
	out := cmd.OutOrStdout()
	var cfg *config.Config
	if !destroy {
		var err error
		if cfg, err = loadConfig(cmd); err != nil {
			return err
		}
	}
	op := "apply"
	if destroy {
		op = "destroy"
	}
	st, snap, lock, err := lockedSnapshot(cmd, op)
	if err != nil {
		return err
	}
	defer lock.Release()
	opts := planner.Options{Destroy: destroy, Targets: f.targets, BinarySHA256: applier.HiveBinarySHA256}
	if mustSettings(cmd).GetBool("refresh") && f.refresh {
		opts.Refresher = applier.NewRefresher(st.Dir())
	}
	p, err := planner.Make(cmd.Context(), cfg, snap, opts)
	if err != nil {
		return exitCode(1, err)
	}
	if err := planner.Render(out, p, planner.RenderOptions{Color: colorFor(cmd, out)}); err != nil {
		return exitCode(1, err)
	}
	if !p.HasChanges() {
		if _, err := recordRefresh(cmd, st, snap, p); err != nil {
			return err
		}
		fmt.Fprintf(out, "\n%s\n", (&applier.Result{}).Summary())
		return nil
	}
	if !f.autoApprove {
		question := "Do you want to perform these actions?\n  rbee will perform the actions described above.\n  Only 'yes' will be accepted to approve."
		if destroy {
			question = "Do you really want to destroy everything rbee manages?\n  Every worker, model and hive in the state will be removed.\n  Only 'yes' will be accepted to confirm."
		}
		if !confirm(cmd.InOrStdin(), out, question) {
			return exitCode(1, errors.New("apply cancelled: nothing was changed"))
		}
	}
	if _, err := recordRefresh(cmd, st, snap, p); err != nil {
		return err
	}
	return execute(cmd, st, p, lock)
}

// confirm asks question and reports whether the answer is "yes".
func confirm(in io.Reader, out io.Writer, question string) bool {
	fmt.Fprintf(out, "\n%s\n\n  Enter a value: ", question)
	line, err := bufio.NewReader(in).ReadString('\n')
	fmt.Fprintln(out)
	if err != nil && line == "" {
		return false
	}
	return strings.TrimSpace(line) == "yes"
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
	if cfg, diags := config.Load(configPath(cmd), loadOptions(cmd)); !diags.HasErrors() && cfg != nil {
		hash = cfg.Hash()
	}
	st, snap, lock, err := lockedSnapshot(cmd, "apply")
	if err != nil {
		return err
	}
	defer lock.Release()
	if err := p.Stale(snap, hash); err != nil {
		return exitCode(1, fmt.Errorf("refusing to apply %s: %w", path, err))
	}
	if !p.HasChanges() {
		fmt.Fprintln(cmd.OutOrStdout(), (&applier.Result{}).Summary())
		return nil
	}
	return execute(cmd, st, p, lock)
}

// finishOnSignal returns a context cancelled by the first Ctrl-C or SIGTERM,
// after calling first with it, so the work in flight can finish; a second
// signal calls second (which exits). cancel ends the handling.
func finishOnSignal(parent context.Context, first func(os.Signal), second func()) (ctx context.Context, cancel func()) {
	ctx, stop := context.WithCancel(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-sigs:
			first(s)
		case <-ctx.Done():
			return
		}
		stop()
		if _, ok := <-sigs; ok {
			second()
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		stop()
	}
}

// execute runs the plan with Ctrl-C handling and prints the outcome.
// The lock's interrupt handling is handed off once execute's own handler is
// installed, so no signal falls between the two.
func execute(cmd *cobra.Command, st *state.Store, p *planner.Plan, lock *heldLock) error {
	out := cmd.OutOrStdout()
	stop, cancel := finishOnSignal(cmd.Context(), func(os.Signal) {
		fmt.Fprintln(cmd.ErrOrStderr(), "\nInterrupt received: no new change starts; the changes in flight finish and are recorded. Press Ctrl-C again to quit now (the state lock then stays; release it with rbee state unlock).")
	}, func() { os.Exit(130) })
	defer cancel()
	defer lock.Release() // before cancel stops the handler: no signal may end the process holding the lock
	lock.Handoff()
	a := applier.New(st, out)
	a.Parallelism = mustSettings(cmd).GetInt("parallelism")
	fmt.Fprintln(out)
	res, err := a.Apply(stop, p)
	if err != nil {
		return exitCode(1, err)
	}
	if err := res.Err(); err != nil {
		fmt.Fprintln(out)
		if res.Interrupted {
			return exitCode(130, err)
		}
		return exitCode(1, err)
	}
	if p.Destroy {
		fmt.Fprintf(out, "\nDestroy complete! Resources: %d destroyed.\n", res.Destroyed)
		return nil
	}
	fmt.Fprintf(out, "\n%s\n", res.Summary())
	return nil
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/rbee-dev/rbee/operation"
	"github.com/rbee-dev/rbee/planner"
	"github.com/rbee-dev/rbee/state"
	"github.com/spf13/cobra"
)

func newStateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use: "state",
		Example: `  rbee state list
  rbee state show 'worker.chat[gpu1/0]'
  rbee state rm model.tinyllama@gpu1
  rbee state restore                        # undo the last change to the state
  rbee state unlock 14574abe-206d-78fc-f29f-980cfd7fca72
  rbee state history --limit 10             # who changed what, newest first`,
		Short: "Inspect and repair rbee's state: list, show, rm, restore, unlock, history",
		Long: `rbee records what it did in a Pebble database in the state folder
(--state, default .rbee beside the configuration): nodes, models on nodes and
workers. Addresses: node.NAME, model.NAME@NODE, worker.POOL[NODE/INDEX].`,
	}
	cmd.AddCommand(newStateListCmd(), newStateShowCmd(), newStateRmCmd(), newStateRestoreCmd(), newStateUnlockCmd(), newStateHistoryCmd())
	cmd.AddCommand(newStateMigrateCmd())
	return cmd
}

func newStateShowCmd() *cobra.Command {
	return &cobra.Command{
		Use: "show ADDR",
		Example: `  rbee state show node.gpu1
  rbee state show 'worker.chat[gpu1/0]'     # quote the brackets for the shell`,
		Short: "Print one resource's record as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := state.ParseAddr(args[0])
			if err != nil {
				return exitCode(1, err)
			}
			_, snap, err := openSnapshot(cmd)
			if err != nil {
				return err
			}
			rec, ok := snap.Get(a)
			if !ok {
				return exitCode(1, fmt.Errorf("%s is not in the state; see rbee state list", a))
			}
			b, err := json.MarshalIndent(rec, "", "  ")
			if err != nil {
				return exitCode(1, err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(b))
			return nil
		},
	}
}

func newStateRmCmd() *cobra.Command {
	rm := &cobra.Command{
		Use: "rm ADDR...",
		Example: `  rbee state rm model.tinyllama@gpu1
  rbee state rm node.gpu2                   # also forgets its models and workers`,
		Short: "Forget resources without touching the fleet (node.N also forgets what runs on it)",
		Long: `Remove records from the state. Nothing is stopped or deleted on the nodes:
rbee simply forgets the resources, so the next plan proposes to create them.
Removing node.NAME also removes the models and workers recorded on that node.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var addrs []state.Addr
			for _, s := range args {
				a, err := state.ParseAddr(s)
				if err != nil {
					return exitCode(1, err)
				}
				addrs = append(addrs, a)
			}
			var removed []state.Addr
			err := lockedState(cmd, "state rm", func(ctx context.Context, st operation.State, snap *state.Snapshot) error {
				for _, a := range addrs {
					if _, ok := snap.Get(a); !ok {
						return fmt.Errorf("%s is not in the state; nothing was removed (see rbee state list)", a)
					}
				}
				// An address selects itself, a node address everything on the node.
				for _, b := range snap.Addrs() {
					if slices.ContainsFunc(addrs, func(a state.Addr) bool { return planner.MatchTarget(a.String(), b) }) {
						removed = append(removed, b)
					}
				}
				return st.Delete(ctx, removed...)
			})
			if err != nil {
				return err
			}
			for _, a := range removed {
				fmt.Fprintf(cmd.OutOrStdout(), "Removed %s\n", a)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Successfully removed %s from the state (nothing was changed on the nodes).\n", plural(len(removed), "resource"))
			return nil
		},
	}
	addLockFlags(rm.Flags())
	return rm
}

func newStateUnlockCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "unlock ID",
		Example: `  rbee state unlock 14574abe-206d-78fc-f29f-980cfd7fca72   # the ID from the lock error`,
		Short:   "Release a stale state lock (the ID is in the lock error)",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openState(cmd)
			if err != nil {
				return err
			}
			if err := st.Unlock(cmd.Context(), args[0]); err != nil {
				return exitCode(1, err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "The state lock was released.")
			return nil
		},
	}
}

func newStateRestoreCmd() *cobra.Command {
	var force bool
	restore := &cobra.Command{
		Use: "restore [FILE]",
		Example: `  rbee state restore                        # undo the last write session
  rbee state restore saved.json -force      # a backup of another state`,
		Short: "Put back the state as it was before the last change (or from FILE)",
		Long: `The first write of every locked command (apply, destroy, refresh, state rm,
watch) saves the state as it was to ` + state.BackupFile + ` in the state folder;
a plan, which writes nothing, leaves it alone. rbee state restore replaces the
state with that file (or FILE). Nothing on the nodes is changed: run rbee plan
afterwards to see how the fleet differs. The state being replaced becomes the
new backup, so a restore can itself be undone with another restore.

A state database that cannot be read (damaged files, lost writes) is moved
aside first, and one that was deleted is created again: restoring the backup
into it needs no -force. Run rbee refresh afterwards to record what runs.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := prepareRestore(cmd); err != nil {
				return err
			}
			// Read before locking: taking the lock writes a new backup.
			from, path, err := readBackup(cmd, args)
			if err != nil {
				return exitCode(1, fmt.Errorf("read the backup: %w", err))
			}
			err = lockedState(cmd, "state restore", func(ctx context.Context, st operation.State, _ *state.Snapshot) error {
				return st.Restore(ctx, from, force)
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Restored %s from %s (serial %d). Nothing was changed on the nodes; run rbee plan to compare.\n",
				plural(from.Len(), "resource"), path, from.Serial)
			return nil
		},
	}
	restore.Flags().BoolVar(&force, "force", false, "restore a backup whose lineage differs from the state's")
	addLockFlags(restore.Flags())
	return restore
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

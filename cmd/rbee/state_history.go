package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rbee-dev/rbee/state"
)

func newStateHistoryCmd() *cobra.Command {
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use: "history",
		Example: `  rbee state history                        # every write, newest first
  rbee state history --limit 5
  rbee state history -json | jq 'select(.operation == "apply")'`,
		Short: "List who changed the state, when, under which operation, and what changed",
		Long: `Every write to the state records an entry in the same batch: the serial it
made, the time, the operation whose lock was held (apply, destroy, refresh,
state rm, state restore, watch, or "unlocked"), the user, host and process,
and the addresses put and deleted. The last ` + fmt.Sprint(state.HistoryLimit) + ` entries are kept.
-json writes one JSON object per entry.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return exitCode(1, fmt.Errorf("--limit %d: give a number of entries, or 0 for all", limit))
			}
			st, err := openState(cmd)
			if err != nil {
				return err
			}
			entries, err := st.History(cmd.Context(), limit)
			if err != nil {
				return exitCode(1, err)
			}
			if asJSON {
				return writeHistoryJSON(cmd.OutOrStdout(), entries)
			}
			if len(entries) == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "The state in %s has no history: nothing has been written yet.\n", st.Dir())
				return nil
			}
			return writeHistoryTable(cmd.OutOrStdout(), entries)
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&asJSON, "json", false, "write one JSON object per entry (NDJSON)")
	fs.IntVar(&limit, "limit", 0, "show the last N entries (0: all)")
	return cmd
}

func writeHistoryJSON(w io.Writer, entries []state.HistoryEntry) error {
	enc := json.NewEncoder(w)
	for _, e := range entries {
		if err := enc.Encode(e); err != nil {
			return exitCode(1, err)
		}
	}
	return nil
}

func writeHistoryTable(w io.Writer, entries []state.HistoryEntry) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIAL\tTIME\tOPERATION\tWHO\tCHANGES")
	for _, e := range entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s@%s (pid %d)\t%s\n", e.Serial, e.Time.Local().Format(time.DateTime), e.Operation, e.User, e.Host, e.PID, e.Summary)
	}
	return tw.Flush()
}

// prepareRestore sets a damaged Pebble database aside, or creates a new one
// where it went missing, so rbee state restore can put back the backup
// (state.PrepareRestore). Another backend is left alone.
func prepareRestore(cmd *cobra.Command) error {
	st, err := openState(cmd)
	if err == nil {
		if _, ok := any(st).(*state.Store); !ok {
			return nil
		}
	} else if !errors.Is(err, state.ErrCorrupt) && !errors.Is(err, state.ErrMissing) {
		return err
	}
	aside, err := state.PrepareRestore(cmd.Context(), stateDir(cmd), state.Options{})
	if err != nil {
		return exitCode(1, err)
	}
	if aside != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "The state database could not be read; it was moved to %s.\n", aside)
	}
	return nil
}

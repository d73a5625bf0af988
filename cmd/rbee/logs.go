package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/rbee-dev/rbee/applier"
	"github.com/rbee-dev/rbee/logs"
)

func newLogsCmd() *cobra.Command {
	var opts logs.Options
	cmd := &cobra.Command{
		Use:   "logs ADDRESS [-f] [--tail N]",
		Short: "Show the log of a node's hive or of a worker",
		Long: `Show the last lines of a log: node.NAME is the hive's own log (the file
it writes in the node's install dir, read over SSH for SSH nodes), and
worker.POOL[NODE/INDEX] is the worker's output as its hive keeps it (the
last 1000 lines). rbee state list shows the addresses.

-f keeps printing new lines until Ctrl-C, which exits 0. --json writes one
{"source","line"} object per line.`,
		Example: `  rbee logs node.local
  rbee logs 'worker.chat[gpu1/0]' --tail 50
  rbee logs node.gpu1 -f`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Tail < 1 {
				return exitCode(1, fmt.Errorf("--tail %d: use a number of lines from 1 (default 100)", opts.Tail))
			}
			return runLogs(cmd, args[0], opts)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&opts.Follow, "follow", "f", false, "keep printing new lines until Ctrl-C")
	fs.IntVar(&opts.Tail, "tail", 100, "how many of the last lines to show first")
	fs.BoolVar(&opts.JSON, "json", false, "write one JSON object per line")
	fs.DurationVar(&opts.Every, "poll", time.Second, "how often -f asks for new lines")
	_ = fs.MarkHidden("poll")
	addFleetFlags(cmd)
	return cmd
}

func runLogs(cmd *cobra.Command, addr string, opts logs.Options) error {
	st, snap, err := openSnapshot(cmd)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	src, err := logs.Open(ctx, snap, addr, applier.TokensOf(st).Client)
	if err != nil {
		return exitCode(1, err)
	}
	defer src.Close()
	if err := logs.Show(ctx, src, cmd.OutOrStdout(), opts); err != nil && !errors.Is(err, ctx.Err()) {
		return exitCode(1, err)
	}
	return nil // Ctrl-C ends -f: a normal exit
}

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rbee-dev/rbee/modellock"
)

func newLockCmd() *cobra.Command {
	var upgrade, check bool
	cmd := &cobra.Command{
		Use:   "lock [-upgrade [MODEL]] [-check]",
		Short: "Write .rbee.lock.hcl: the exact commit, size and sha256 of every model",
		Long: `Resolve every model of the configuration to exactly what will be downloaded
and write it to .rbee.lock.hcl beside the configuration (inside it for a
folder): a Hugging Face revision to its commit, every file (every shard) to
its size and sha256 (from the server's X-Linked-Etag, or by streaming the file
through sha256 when the server gives no checksum), a synth: model to its
generator, seed and sha256, an https: URL to its size and sha256, and the
llama.cpp build this binary carries. Commit the file beside the configuration.

Once the file exists, plan and apply download the locked commit, verify the
locked sha256, and refuse a model that is not in the lock or whose entry no
longer matches its model block. Without the file nothing is enforced.

Entries that still match their model blocks are kept; new or changed blocks
are resolved. -upgrade resolves moving revisions again (all of them, or only
MODEL) and shows what changed. -check resolves everything, writes nothing and
exits 2 when the lock is out of date (an upstream branch moved), for CI.

Exit status: 0 done (or up to date with -check), 1 error, 2 out of date (-check).`,
		Example: `  rbee lock                      # write .rbee.lock.hcl beside rbee.hcl
  rbee lock -upgrade             # follow every branch to its current commit
  rbee lock -upgrade tinyllama   # only that model
  rbee lock -check               # CI: exit 2 when an upstream branch moved`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := modellock.Options{Upgrade: upgrade}
			if len(args) == 1 {
				if !upgrade {
					return exitCode(1, fmt.Errorf("a MODEL argument is only taken with -upgrade: rbee lock -upgrade %s", args[0]))
				}
				opts.Only = args[0]
			}
			if check && upgrade {
				return exitCode(1, errors.New("-check resolves every model and writes nothing; it cannot be combined with -upgrade"))
			}
			return runLock(cmd, opts, check)
		},
	}
	addFleetFlags(cmd)
	cmd.Flags().BoolVar(&upgrade, "upgrade", false, "resolve moving revisions again (every model, or only MODEL) and show what changed")
	cmd.Flags().BoolVar(&check, "check", false, "write nothing; exit 2 when the lock is out of date (an upstream branch moved)")
	addVarFlags(cmd.Flags())
	return cmd
}

func runLock(cmd *cobra.Command, opts modellock.Options, check bool) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	path := modellock.Path(cfg.Path)
	old, err := modellock.Load(path)
	switch {
	case errors.Is(err, modellock.ErrNoLock) && check:
		return exitCode(1, fmt.Errorf("there is no model lock file %s: run rbee lock to write one", path))
	case errors.Is(err, modellock.ErrNoLock):
		old = nil
	case err != nil:
		return exitCode(1, err)
	}
	if check {
		opts = modellock.Options{Upgrade: true}
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r := modellock.NewResolver("rbee " + version)
	next, changes, err := modellock.Update(ctx, r, cfg, old, modellock.BinaryBuild(), opts)
	if err != nil {
		if ctx.Err() != nil {
			return exitCode(130, errors.New("rbee lock interrupted: the lock file was not changed"))
		}
		return exitCode(1, err)
	}
	out := cmd.OutOrStdout()
	for _, c := range changes {
		fmt.Fprintln(out, c)
	}
	if r.Hashed > 0 {
		fmt.Fprintf(out, "Streamed %d file(s) through sha256: their server gave no checksum.\n", r.Hashed)
	}
	name := filepath.Base(path)
	if check {
		if len(changes) > 0 {
			fmt.Fprintf(out, "\n%s is out of date: %d change(s). Run rbee lock -upgrade to take them.\n", name, len(changes))
			return exitCode(2, nil)
		}
		fmt.Fprintf(out, "%s is up to date (%d model(s)).\n", name, len(next.Models))
		return nil
	}
	text := next.Bytes()
	if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, text) {
		fmt.Fprintf(out, "%s is up to date (%d model(s)).\n", name, len(next.Models))
		return nil
	}
	if err := next.Write(path); err != nil {
		return exitCode(1, err)
	}
	fmt.Fprintf(out, "Wrote %s (%d model(s)). Commit it beside the configuration: plan and apply now require it.\n", path, len(next.Models))
	return nil
}

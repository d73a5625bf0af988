package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/spf13/cobra"

	"github.com/rbee-dev/rbee/applier"
	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/etcdstate"
	"github.com/rbee-dev/rbee/operation"
	"github.com/rbee-dev/rbee/state"
)

// stateBackend is the state block of the command's configuration, or nil
// for the Pebble store (also when there is no configuration file).
func stateBackend(cmd *cobra.Command) (*config.StateBackend, error) {
	if v, ok := loadedConfigs.Load(cmd); ok {
		return v.(*config.Config).State, nil
	}
	return backendOf(configPath(cmd), loadOptions(cmd))
}

// stateBlockRe finds a state block in a configuration that does not load.
var stateBlockRe = regexp.MustCompile(`(?m)^\s*state\s+"`)

// backendOf reads the state block of the configuration at path quietly. A
// configuration with errors is only an error when it has a state block:
// rbee cannot know where that state is, and must not use another.
func backendOf(path string, opts config.LoadOptions) (*config.StateBackend, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	cfg, diags := config.Load(path, opts)
	if !diags.HasErrors() {
		return cfg.State, nil
	}
	files, _ := config.Files(path)
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && stateBlockRe.Match(b) {
			return nil, fmt.Errorf("the configuration %s has a state block but does not load, so rbee cannot tell where the state is: %v. Run rbee validate", path, diags.Err())
		}
	}
	return nil, nil
}

// openBackend connects to the etcd state b; dir is the local folder.
func openBackend(ctx context.Context, b *config.StateBackend, dir string) (operation.State, error) {
	st, err := etcdstate.Open(ctx, etcdstate.Options{Backend: *b, Dir: dir})
	if err != nil {
		return nil, exitCode(1, err)
	}
	return st, nil
}

// describeState names a state for messages: etcd endpoints and prefix, or the folder.
func describeState(st operation.State) string {
	if w, ok := st.(interface{ Where() string }); ok {
		return w.Where()
	}
	return st.Dir()
}

// readBackup is what rbee state restore puts back: FILE when given, else
// the backup the state keeps (in etcd, or the file in the state folder).
func readBackup(cmd *cobra.Command, args []string) (*state.Snapshot, string, error) {
	path := filepath.Join(stateDir(cmd), state.BackupFile)
	if len(args) == 1 {
		path = args[0]
	} else {
		st, err := openState(cmd)
		if err != nil {
			return nil, "", err
		}
		if b, ok := st.(interface {
			Backup(ctx context.Context) (*state.Snapshot, error)
		}); ok {
			snap, err := b.Backup(cmd.Context())
			return snap, describeState(st), err
		}
	}
	snap, err := state.ReadBackup(path)
	return snap, path, err
}

// importer is a state that can become a copy of another, lineage and serial included.
type importer interface {
	Import(ctx context.Context, from *state.Snapshot) error
}

func newStateMigrateCmd() *cobra.Command {
	var toConfig, toState string
	var force bool
	cmd := &cobra.Command{
		Use: "migrate --to-config PATH",
		Example: `  rbee state migrate --to-config team/rbee.hcl         # .rbee → the etcd of team/rbee.hcl's state block
  rbee --config team/rbee.hcl state migrate --to-config solo/rbee.hcl   # and back to Pebble`,
		Short: "Copy the state to the backend another configuration names (Pebble ↔ etcd)",
		Long: `Copy every record, the serial, the lineage and the hive tokens of this
configuration's state to the state of the configuration at --to-config: the
etcd of its state "etcd" block, or without one the Pebble folder beside it
(--to-state DIR to choose another). Both states are locked meanwhile. A
target that already holds a state is refused unless -force is given. The
source is left as it was.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if toConfig == "" {
				return exitCode(1, errors.New("rbee state migrate needs --to-config PATH: the configuration whose state receives the copy"))
			}
			return migrate(cmd, toConfig, toState, force)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&toConfig, "to-config", "", "configuration (file or folder) whose state receives the copy")
	fs.StringVar(&toState, "to-state", "", "Pebble state folder of the target when its configuration has no state block (default: .rbee beside it)")
	fs.BoolVar(&force, "force", false, "overwrite a target that already holds a state")
	addLockFlags(fs)
	return cmd
}

// migrate copies the command's state into the state of toConfig.
func migrate(cmd *cobra.Command, toConfig, toState string, force bool) error {
	src, err := newBackend(cmd)
	if err != nil {
		return err
	}
	dst, err := targetState(cmd, toConfig, toState)
	if err != nil {
		return err
	}
	from, to := describeState(src.State), describeState(dst)
	if from == to {
		return exitCode(1, fmt.Errorf("the source and the target are the same state (%s); name another configuration with --to-config", from))
	}
	imp, ok := dst.(importer)
	if !ok {
		return exitCode(1, fmt.Errorf("the state %s cannot receive a copy", to))
	}
	pol := operation.LockPolicy{Timeout: lockPolicy(cmd).Timeout}
	var copied *state.Snapshot
	err = lockedState(cmd, "state migrate", func(ctx context.Context, _ operation.State, snap *state.Snapshot) error {
		target := &operation.Backend{State: dst}
		return target.Locked(ctx, "state migrate", pol, func(ctx context.Context, cur *state.Snapshot) error {
			if (cur.Serial > 0 || cur.Len() > 0) && !force {
				return fmt.Errorf("the target %s already holds a state (%d resources, serial %d, lineage %s); overwrite it with -force", to, cur.Len(), cur.Serial, cur.Lineage)
			}
			if err := imp.Import(ctx, snap); err != nil {
				return err
			}
			copied = snap
			return copyTokens(snap, src.State, dst)
		})
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Copied %s (serial %d, lineage %s) from %s to %s. The source was not changed; once every machine uses %s, it can be removed.\n",
		plural(copied.Len(), "resource"), copied.Serial, copied.Lineage, from, to, toConfig)
	return nil
}

// targetState opens the state of the configuration at path.
func targetState(cmd *cobra.Command, path, dir string) (operation.State, error) {
	if dir == "" {
		base := path
		if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
			base = filepath.Dir(path)
		}
		dir = filepath.Join(base, ".rbee")
	}
	if _, err := os.Stat(path); err != nil {
		return nil, exitCode(1, fmt.Errorf("--to-config %s: %w", path, err))
	}
	b, err := backendOf(path, config.LoadOptions{StateDir: dir})
	if err != nil {
		return nil, exitCode(1, err)
	}
	if b != nil {
		return openBackend(cmd.Context(), b, dir)
	}
	st, err := state.Open(cmd.Context(), dir, state.Options{})
	if err != nil {
		return nil, exitCode(1, err)
	}
	return st, nil
}

// copyTokens copies the hive token of every node in snap.
func copyTokens(snap *state.Snapshot, from, to operation.State) error {
	src, dst := applier.TokensOf(from), applier.TokensOf(to)
	for _, n := range snap.Nodes {
		tok, err := src.Get(n.Name)
		if err != nil {
			return fmt.Errorf("reading the hive token of node %s: %w", n.Name, err)
		}
		if tok == "" {
			continue
		}
		if err := dst.Put(n.Name, tok); err != nil {
			return fmt.Errorf("copying the hive token of node %s: %w", n.Name, err)
		}
	}
	return nil
}

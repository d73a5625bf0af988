package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/rbee-dev/rbee/applier"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"golang.org/x/term"

	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/planner"
	"github.com/rbee-dev/rbee/state"
)

// configCommands are validate, fmt, plan and state (list, show, rm, unlock).
func configCommands() []*cobra.Command {
	cmds := []*cobra.Command{newValidateCmd(), newFmtCmd(), newPlanCmd(), newStateCmd()}
	for _, c := range cmds {
		addFleetFlags(c)
	}
	return cmds
}

// Settings precedence, highest first: command-line flag, RBEE_<FLAG> environment
// variable (dashes become underscores: RBEE_LOCK_TIMEOUT), the settings file
// ~/.config/rbee/config.{yaml,toml,json} ($XDG_CONFIG_HOME honoured), then the
// built-in default. Only the keys below are read from env and file.
var settingKeys = []string{"config", "state", "lock", "lock-timeout", "refresh", "parallelism", "no-color"}

// addFleetFlags adds --config and --state to cmd and its subcommands. Every
// command that reads the HCL or the state (plan, apply, watch, ...) calls it.
func addFleetFlags(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	if fs.Lookup("config") == nil {
		fs.String("config", "rbee.hcl", "configuration file, or folder of *.hcl files")
	}
	if fs.Lookup("state") == nil {
		fs.String("state", "", "state folder (default: .rbee beside the configuration)")
	}
}

// addVarFlags adds -var and -var-file (used by loadConfig).
func addVarFlags(fs *pflag.FlagSet) {
	fs.StringArray("var", nil, "set a variable: -var name=value (repeatable; wins over -var-file and RBEE_VAR_name)")
	fs.StringArray("var-file", nil, "read variables from an HCL file of name = value lines (repeatable)")
}

// addLockFlags adds -lock and -lock-timeout (used by lockState).
func addLockFlags(fs *pflag.FlagSet) {
	fs.Bool("lock", true, "lock the state while the command runs")
	fs.Duration("lock-timeout", 0, "how long to wait for a state lock held by someone else")
}

// settings resolves the keys in settingKeys for cmd: flag > RBEE_* env > settings file > default.
func settings(cmd *cobra.Command) (*viper.Viper, error) {
	v := viper.New()
	v.SetConfigName("config")
	if xdg := os.Getenv("XDG_CONFIG_HOME"); xdg != "" {
		v.AddConfigPath(filepath.Join(xdg, "rbee"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		v.AddConfigPath(filepath.Join(home, ".config", "rbee"))
	}
	v.SetEnvPrefix("RBEE")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	for _, k := range settingKeys {
		_ = v.BindEnv(k)
		if f := cmd.Flags().Lookup(k); f != nil {
			if err := v.BindPFlag(k, f); err != nil {
				return nil, err
			}
		}
	}
	if err := v.ReadInConfig(); err != nil {
		var nf viper.ConfigFileNotFoundError
		if !errors.As(err, &nf) {
			return nil, fmt.Errorf("reading settings file %s: %w", v.ConfigFileUsed(), err)
		}
	}
	return v, nil
}

// commandSettings keeps each command's settings, so the settings file is
// read (and a broken one warned about) once per run. Viper reads the bound
// flags and environment variables when asked, so the cached value follows
// them.
var commandSettings sync.Map // *cobra.Command → *viper.Viper

// mustSettings is settings, read once per command; a broken settings file
// is a warning and its values are not used.
func mustSettings(cmd *cobra.Command) *viper.Viper {
	if v, ok := commandSettings.Load(cmd); ok {
		return v.(*viper.Viper)
	}
	v, err := settings(cmd)
	if err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "Warning:", err)
		v = viper.New()
	}
	commandSettings.Store(cmd, v)
	return v
}

// configPath is --config (default rbee.hcl in the current folder).
func configPath(cmd *cobra.Command) string {
	if p := mustSettings(cmd).GetString("config"); p != "" {
		return p
	}
	return "rbee.hcl"
}

// stateDir is --state, or .rbee beside the configuration.
func stateDir(cmd *cobra.Command) string {
	if d := mustSettings(cmd).GetString("state"); d != "" {
		return d
	}
	p := configPath(cmd)
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		return filepath.Join(p, ".rbee")
	}
	return filepath.Join(filepath.Dir(p), ".rbee")
}

// colorFor reports whether output to f may be coloured: a terminal, NO_COLOR
// unset (or empty) and no --no-color.
func colorFor(cmd *cobra.Command, f io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" || mustSettings(cmd).GetBool("no-color") {
		return false
	}
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

// loadConfig reads and validates the configuration named by --config with
// -var/-var-file (when the command has them), printing every diagnostic to
// stderr. It fails (exit 1) when there are errors.
func loadConfig(cmd *cobra.Command) (*config.Config, error) {
	cfg, diags := config.Load(configPath(cmd), loadOptions(cmd))
	if len(diags.Diags) > 0 {
		_ = diags.Write(cmd.ErrOrStderr(), colorFor(cmd, cmd.ErrOrStderr()))
	}
	if diags.HasErrors() {
		return nil, exitCode(1, diags.Err())
	}
	return cfg, nil
}

// loadOptions are the config.LoadOptions of every command: the state folder
// and -var/-var-file (when the command has them; absent flags read as empty).
func loadOptions(cmd *cobra.Command) config.LoadOptions {
	opts := config.LoadOptions{StateDir: stateDir(cmd)}
	opts.Vars, _ = cmd.Flags().GetStringArray("var")
	opts.VarFiles, _ = cmd.Flags().GetStringArray("var-file")
	return opts
}

// openState opens the state folder named by --state.
func openState(cmd *cobra.Command) (*state.Store, error) {
	st, err := state.Open(cmd.Context(), stateDir(cmd), state.Options{})
	if err != nil {
		return nil, exitCode(1, err)
	}
	return st, nil
}

// openSnapshot opens the state and reads every record, without the lock.
func openSnapshot(cmd *cobra.Command) (*state.Store, *state.Snapshot, error) {
	st, err := openState(cmd)
	if err != nil {
		return nil, nil, err
	}
	snap, err := st.Snapshot(cmd.Context())
	if err != nil {
		return nil, nil, exitCode(1, err)
	}
	return st, snap, nil
}

// lockedSnapshot opens the state, takes its lock for op (unless -lock=false)
// and reads a snapshot under it. Release the returned lock when done.
func lockedSnapshot(cmd *cobra.Command, op string) (*state.Store, *state.Snapshot, *heldLock, error) {
	st, err := openState(cmd)
	if err != nil {
		return nil, nil, nil, err
	}
	lock, err := lockState(cmd, st, op)
	if err != nil {
		return nil, nil, nil, err
	}
	snap, err := st.Snapshot(cmd.Context())
	if err != nil {
		lock.Release()
		return nil, nil, nil, exitCode(1, err)
	}
	return st, snap, lock, nil
}

// heldLock is the state lock one command holds. Until Handoff or Release,
// Ctrl-C (or SIGTERM) releases it and exits with status 130 (143), so an
// interrupted plan or a declined apply never leaves a stale lock behind.
type heldLock struct {
	release func()
	once    sync.Once
	stop    func()
}

// Handoff ends the interrupt handling; the caller has installed its own.
func (l *heldLock) Handoff() { l.once.Do(l.stop) }

// Release releases the lock, then ends the interrupt handling (in this
// order, so that no signal can end the process between the two with the
// lock still held).
func (l *heldLock) Release() {
	l.release()
	l.Handoff()
}

// lockState takes the state lock for op unless -lock=false, waiting up to
// -lock-timeout. The interrupt handler is installed before the lock is
// taken, so no signal falls between the two.
func lockState(cmd *cobra.Command, st *state.Store, op string) (*heldLock, error) {
	v := mustSettings(cmd)
	locking := cmd.Flags().Lookup("lock") == nil || v.GetBool("lock")

	// mu is held while the lock is being taken: a signal then stops the
	// wait through lockCtx and releases whatever Lock got.
	var mu sync.Mutex
	var held bool
	release := func() {}
	lockCtx, stopWaiting := context.WithCancel(cmd.Context())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			stopWaiting()
			mu.Lock()
			msg := interruptMessage(op) + " Nothing was changed"
			if held {
				release()
				msg += " and the state lock was released"
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "\n%s.\n", msg)
			code := 130
			if sig == syscall.SIGTERM {
				code = 143
			}
			os.Exit(code)
		case <-done:
		}
	}()
	lock := &heldLock{stop: func() {
		signal.Stop(sigs)
		close(done)
		stopWaiting()
	}}
	if !locking {
		lock.release = func() {}
		return lock, nil
	}
	mu.Lock()
	info, err := st.Lock(lockCtx, op, v.GetDuration("lock-timeout"))
	if err != nil {
		mu.Unlock()
		if lockCtx.Err() != nil && cmd.Context().Err() == nil {
			select {} // interrupted while waiting: the handler above exits
		}
		lock.Handoff()
		return nil, exitCode(1, err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			if err := st.Unlock(context.WithoutCancel(cmd.Context()), info.ID); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "Error releasing the state lock: %v\nRelease it with: rbee state unlock %s\n", err, info.ID)
			}
		})
	}
	lock.release = release
	held = true
	mu.Unlock()
	return lock, nil
}

// interruptMessage is what an interrupted op prints before it exits.
func interruptMessage(op string) string {
	switch op {
	case "apply", "destroy":
		return "Apply cancelled."
	case "refresh":
		return "Refresh cancelled."
	}
	return fmt.Sprintf("Interrupted: rbee %s stopped.", op)
}

func newValidateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use: "validate",
		Example: `  rbee validate
  rbee validate --config fleet/            # a folder of *.hcl files
  rbee validate -var hf_token=hf_xxx       # with a variable set`,
		Short: "Check the configuration: every problem at once, with file:line:col",
		Long: `Check the configuration for errors without contacting any node.

Reports every problem at once with its file, line and column: unknown or
duplicate names, pools that reference missing models or nodes, bad ports,
backends and model sources, names that are not DNS-safe, missing identity
files, negative replicas, conflicting ports on one machine.

Exit status: 0 valid (warnings allowed), 1 invalid.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Success! The configuration is valid (%s, %s, %s).\n",
				plural(len(cfg.Nodes), "node"), plural(len(cfg.Models), "model"), plural(len(cfg.Pools), "pool"))
			return nil
		},
	}
	addVarFlags(cmd.Flags())
	cmd.Flags().Bool("no-color", false, "never colour the output")
	return cmd
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func newFmtCmd() *cobra.Command {
	var check, diff bool
	cmd := &cobra.Command{
		Use: "fmt [FILE|DIR ...]",
		Example: `  rbee fmt                                 # rewrite rbee.hcl in place
  rbee fmt -check -diff                    # CI: show the changes, exit 3 if any`,
		Short: "Rewrite HCL files in the canonical style",
		Long: `Rewrite configuration files in the canonical layout (as terraform fmt does).
Without arguments it formats --config (a file, or the *.hcl files of a folder).

  --check  write nothing; list the files that need formatting and exit 3 if any do
  --diff   print a unified diff of the changes

Exit status: 0 done (or already formatted), 1 syntax error, 3 --check found unformatted files.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{configPath(cmd)}
			}
			var files []string
			for _, a := range args {
				fs, err := config.Files(a)
				if err != nil {
					return exitCode(1, err)
				}
				files = append(files, fs...)
			}
			unformatted, failed := 0, false
			for _, f := range files {
				src, err := os.ReadFile(f)
				if err != nil {
					return exitCode(1, err)
				}
				out, diags := config.Format(f, src)
				if diags.HasErrors() {
					_ = diags.Write(cmd.ErrOrStderr(), colorFor(cmd, cmd.ErrOrStderr()))
					failed = true
					continue
				}
				if string(out) == string(src) {
					continue
				}
				unformatted++
				fmt.Fprintln(cmd.OutOrStdout(), f)
				if diff {
					fmt.Fprint(cmd.OutOrStdout(), config.UnifiedDiff("old/"+f, "new/"+f, src, out))
				}
				if !check {
					fi, err := os.Stat(f)
					if err != nil {
						return exitCode(1, err)
					}
					if err := os.WriteFile(f, out, fi.Mode().Perm()); err != nil {
						return exitCode(1, fmt.Errorf("writing %s: %w", f, err))
					}
				}
			}
			switch {
			case failed:
				return exitCode(1, errors.New("some files have syntax errors and were not formatted"))
			case check && unformatted > 0:
				return exitCode(3, fmt.Errorf("%s not formatted; run rbee fmt", plural(unformatted, "file")))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "only check; exit 3 if any file needs formatting")
	cmd.Flags().BoolVar(&diff, "diff", false, "print the changes as a unified diff")
	return cmd
}

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
			st, snap, lock, err := lockedSnapshot(cmd, "plan")
			if err != nil {
				return err
			}
			defer lock.Release()
			opts := planner.Options{Destroy: destroy, RefreshOnly: refreshOnly, Targets: targets, BinarySHA256: applier.HiveBinarySHA256}
			if refresh {
				opts.Refresher = applier.NewRefresher(st.Dir())
			}
			p, err := planner.Make(cmd.Context(), cfg, snap, opts)
			if err != nil {
				return exitCode(1, err)
			}
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

func newStateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use: "state",
		Example: `  rbee state list
  rbee state show 'worker.chat[gpu1/0]'
  rbee state rm model.tinyllama@gpu1
  rbee state restore                        # undo the last change to the state
  rbee state unlock 14574abe-206d-78fc-f29f-980cfd7fca72`,
		Short: "Inspect and repair rbee's state: list, show, rm, restore, unlock",
		Long: `rbee records what it did in a Pebble database in the state folder
(--state, default .rbee beside the configuration): nodes, models on nodes and
workers. Addresses: node.NAME, model.NAME@NODE, worker.POOL[NODE/INDEX].`,
	}
	list := &cobra.Command{
		Use: "list",
		Example: `  rbee state list
  rbee state list --config demo/rbee.hcl`,
		Short: "List the resources in the state with their status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, snap, err := openSnapshot(cmd)
			if err != nil {
				return err
			}
			if l, err := st.CurrentLock(cmd.Context()); err == nil && l != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "Note: the state is locked by %s\n", l)
			}
			if snap.Len() == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "The state in %s is empty: nothing has been applied yet.\n", st.Dir())
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ADDRESS\tSTATUS\tDETAILS")
			for _, a := range snap.Addrs() {
				rec, _ := snap.Get(a)
				status, details := describe(rec)
				fmt.Fprintf(tw, "%s\t%s\t%s\n", a, dash(status), details)
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
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
			st, snap, lock, err := lockedSnapshot(cmd, "state rm")
			if err != nil {
				return err
			}
			defer lock.Release()
			for _, a := range addrs {
				if _, ok := snap.Get(a); !ok {
					return exitCode(1, fmt.Errorf("%s is not in the state; nothing was removed (see rbee state list)", a))
				}
			}
			// An address selects itself, a node address everything on the node.
			var remove []state.Addr
			for _, b := range snap.Addrs() {
				if slices.ContainsFunc(addrs, func(a state.Addr) bool { return planner.MatchTarget(a.String(), b) }) {
					remove = append(remove, b)
				}
			}
			if err := st.Delete(cmd.Context(), remove...); err != nil {
				return exitCode(1, err)
			}
			for _, a := range remove {
				fmt.Fprintf(cmd.OutOrStdout(), "Removed %s\n", a)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Successfully removed %s from the state (nothing was changed on the nodes).\n", plural(len(remove), "resource"))
			return nil
		},
	}
	addLockFlags(rm.Flags())
	unlock := &cobra.Command{
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
new backup, so a restore can itself be undone with another restore.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := filepath.Join(stateDir(cmd), state.BackupFile)
			if len(args) == 1 {
				path = args[0]
			}
			// Read before locking: taking the lock writes a new backup.
			from, err := state.ReadBackup(path)
			if err != nil {
				return exitCode(1, fmt.Errorf("read the backup: %w", err))
			}
			st, _, lock, err := lockedSnapshot(cmd, "state restore")
			if err != nil {
				return err
			}
			defer lock.Release()
			if err := st.Restore(cmd.Context(), from, force); err != nil {
				return exitCode(1, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Restored %s from %s (serial %d). Nothing was changed on the nodes; run rbee plan to compare.\n",
				plural(from.Len(), "resource"), path, from.Serial)
			return nil
		},
	}
	restore.Flags().BoolVar(&force, "force", false, "restore a backup whose lineage differs from the state's")
	addLockFlags(restore.Flags())
	cmd.AddCommand(list, show, rm, restore, unlock)
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// describe gives a record's status and a one-line summary for state list.
func describe(rec state.Record) (string, string) {
	ago := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return time.Since(t).Round(time.Second).String() + " ago"
	}
	switch r := rec.(type) {
	case *state.NodeRecord:
		where := "this machine"
		if r.Connection == config.ConnectionSSH {
			where = r.Host
		}
		ver := r.HiveVersion
		if ver == "" {
			ver = "unknown"
		}
		return r.Status, fmt.Sprintf("%s, last contact %s, install_dir %s, hive %s", where, ago(r.LastContact), r.InstallDir, ver)
	case *state.ModelRecord:
		sum := r.ActualSHA256
		if len(sum) > 12 {
			sum = sum[:12] + "…"
		}
		return r.Status, fmt.Sprintf("%s, %d bytes, sha256 %s", r.Source, r.Size, dash(sum))
	case *state.WorkerRecord:
		return r.State, fmt.Sprintf("%s, %s, %s, ctx_size %d, %d slots, restarts %d", r.Model, dash(r.URL), r.Backend, r.CtxSize, r.Slots, r.Restarts)
	}
	return "", ""
}

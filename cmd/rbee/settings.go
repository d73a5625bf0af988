package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/operation"
	"github.com/rbee-dev/rbee/state"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"golang.org/x/term"
)

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
	loadedConfigs.Store(cmd, cfg)
	return cfg, nil
}

// quietConfig is the configuration when it loads without errors, else nil,
// printing nothing: for commands that only use it when it is there (a
// gateway block, a plan file's hash). The command that must report a broken
// file uses loadConfig.
func quietConfig(cmd *cobra.Command) *config.Config {
	if v, ok := loadedConfigs.Load(cmd); ok {
		return v.(*config.Config)
	}
	cfg, diags := config.Load(configPath(cmd), loadOptions(cmd))
	if diags.HasErrors() {
		return nil
	}
	loadedConfigs.Store(cmd, cfg)
	return cfg
}

// loadedConfigs keeps the configuration loadConfig read for each command,
// so openState finds its state block without reading the files again.
var loadedConfigs sync.Map // *cobra.Command → *config.Config

// loadOptions are the config.LoadOptions of every command: the state folder
// and -var/-var-file (when the command has them; absent flags read as empty).
func loadOptions(cmd *cobra.Command) config.LoadOptions {
	opts := config.LoadOptions{StateDir: stateDir(cmd)}
	opts.Vars, _ = cmd.Flags().GetStringArray("var")
	opts.VarFiles, _ = cmd.Flags().GetStringArray("var-file")
	return opts
}

// openState opens the state: the etcd backend of the configuration's
// state block, else the Pebble folder named by --state.
func openState(cmd *cobra.Command) (operation.State, error) {
	b, err := stateBackend(cmd)
	if err != nil {
		return nil, exitCode(1, err)
	}
	if b != nil {
		return openBackend(cmd.Context(), b, stateDir(cmd))
	}
	st, err := state.Open(cmd.Context(), stateDir(cmd), state.Options{})
	if err != nil {
		return nil, exitCode(1, err)
	}
	return st, nil
}

// openSnapshot opens the state and reads every record, without the lock.
func openSnapshot(cmd *cobra.Command) (operation.State, *state.Snapshot, error) {
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

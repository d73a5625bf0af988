package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/rbee-dev/rbee/config"
	"github.com/spf13/cobra"
)

// configCommands are validate, fmt, plan and state (list, show, rm, unlock).
func configCommands() []*cobra.Command {
	cmds := []*cobra.Command{newValidateCmd(), newFmtCmd(), newPlanCmd(), newStateCmd()}
	for _, c := range cmds {
		addFleetFlags(c)
	}
	return cmds
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

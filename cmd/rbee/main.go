// Command rbee is the single binary of rbee: the CLI, the node agent (hive), the
// llama.cpp worker and the reconcile daemon. See the README for a tour.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code through cobra without printing twice.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// exitCode returns an error that makes rbee exit with code after printing err (if any).
func exitCode(code int, err error) error { return &exitError{code: code, err: err} }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "rbee",
		Short: "Declarative orchestrator for llama.cpp inference fleets",
		Long: `rbee keeps a fleet of llama.cpp workers equal to one HCL file.

Describe nodes (this machine or SSH hosts), models (Hugging Face, URL, path,
or generated) and worker pools in rbee.hcl, then:

  rbee validate            check the file
  rbee plan                show what would change (-detailed-exitcode for CI)
  rbee apply               make it so
  rbee infer --model M --prompt "..."   stream tokens from a ready worker
  rbee watch               keep it so (file watch + drift healing)`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newVersionCmd(),
		newModelCmd(),  // model.go: model synth | inspect
		newWorkerCmd(), // worker.go: the llama.cpp worker process
		newInferCmd(),  // infer.go: stream tokens from a ready worker
	)
	root.AddCommand(configCommands()...) // config_cmds.go: validate, fmt, plan, state ...
	root.AddCommand(hiveCommands()...)   // hive.go: the node agent
	root.AddCommand(applyCommands()...)  // apply.go: apply, destroy, refresh, infer
	root.AddCommand(watchCommands()...)  // watch.go: the daemon
	root.AddCommand(newGatewayCmd())     // gateway.go: the fleet's OpenAI endpoint
	root.AddCommand(newStatusCmd())      // status.go: the live fleet
	root.AddCommand(newLogsCmd())        // logs.go: hive and worker logs
	root.AddCommand(newLockCmd())        // lock.go: the model lock file
	return root
}

func main() {
	root := newRootCmd()
	normalizeSingleDashFlags(root, os.Args[1:])
	err := root.Execute()
	if err == nil {
		return
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "Error:", ee.err)
		}
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "Error:", err)
	os.Exit(1)
}

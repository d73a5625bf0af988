package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(owner of this file): replace this placeholder.
func newWorkerCmd() *cobra.Command {
	return &cobra.Command{Use: "worker", Short: "(not built yet)", RunE: func(*cobra.Command, []string) error { return errors.New("worker: not built yet") }}
}

package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// TODO(owner of this file): replace this placeholder.
func newModelCmd() *cobra.Command {
	return &cobra.Command{Use: "model", Short: "(not built yet)", RunE: func(*cobra.Command, []string) error { return errors.New("model: not built yet") }}
}

package main

import "github.com/spf13/cobra"

// TODO(owner of this file): replace this placeholder.
func applyCommands() []*cobra.Command { return nil }

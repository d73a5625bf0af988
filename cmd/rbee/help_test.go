package main

import (
	"slices"
	"testing"

	"github.com/spf13/cobra"
)

// TestHelpHasExamples checks that every command's --help teaches by example,
// as the README promises. withoutExample lists the commands still missing one.
func TestHelpHasExamples(t *testing.T) {
	withoutExample := []string{"rbee version", "rbee completion"}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" {
				continue
			}
			path := sub.CommandPath()
			if sub.Example == "" && !slices.Contains(withoutExample, path) && !slices.Contains(withoutExample, sub.Parent().CommandPath()) {
				t.Errorf("%s --help has no example", path)
			}
			walk(sub)
		}
	}
	walk(newRootCmd())
}

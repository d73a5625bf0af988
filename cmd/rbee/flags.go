package main

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// normalizeSingleDashFlags rewrites Terraform-style long flags with one dash
// (-detailed-exitcode, -var=k=v) into the two-dash form cobra parses. Only names
// that some command registers as a long flag are rewritten, so values such as
// "-1" or a prompt that starts with a dash pass through untouched.
func normalizeSingleDashFlags(root *cobra.Command, args []string) {
	// cobra adds --help lazily, so it is not registered yet.
	long := map[string]bool{"help": true}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		add := func(f *pflag.Flag) { long[f.Name] = true }
		c.Flags().VisitAll(add)
		c.PersistentFlags().VisitAll(add)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	for i, a := range args {
		if a == "--" {
			return
		}
		if len(a) < 3 || a[0] != '-' || a[1] == '-' {
			continue
		}
		name, _, _ := strings.Cut(a[1:], "=")
		if len(name) > 1 && long[name] {
			args[i] = "-" + a
		}
	}
}

package main

import (
	"slices"
	"testing"

	"github.com/spf13/cobra"
)

func TestNormalizeSingleDashFlags(t *testing.T) {
	root := &cobra.Command{Use: "rbee"}
	plan := &cobra.Command{Use: "plan"}
	plan.Flags().Bool("detailed-exitcode", false, "")
	plan.Flags().StringArray("var", nil, "")
	plan.Flags().StringP("out", "o", "", "")
	root.AddCommand(plan)
	cases := []struct {
		in, want []string
	}{
		{[]string{"plan", "-detailed-exitcode"}, []string{"plan", "--detailed-exitcode"}},
		{[]string{"plan", "-var=k=v"}, []string{"plan", "--var=k=v"}},
		{[]string{"plan", "-help"}, []string{"plan", "--help"}},
		{[]string{"plan", "--detailed-exitcode"}, []string{"plan", "--detailed-exitcode"}},
		{[]string{"plan", "-o", "f"}, []string{"plan", "-o", "f"}},                 // shorthand stays
		{[]string{"infer", "--prompt", "-1"}, []string{"infer", "--prompt", "-1"}}, // values stay
		{[]string{"plan", "-unknown"}, []string{"plan", "-unknown"}},               // cobra reports it
		{[]string{"plan", "--", "-detailed-exitcode"}, []string{"plan", "--", "-detailed-exitcode"}},
	}
	for _, c := range cases {
		got := slices.Clone(c.in)
		normalizeSingleDashFlags(root, got)
		if !slices.Equal(got, c.want) {
			t.Errorf("normalize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

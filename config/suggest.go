package config

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

func (v *validator) nodeNames() []string {
	out := make([]string, 0, len(v.cfg.Nodes))
	for _, n := range v.cfg.Nodes {
		out = append(out, n.Name)
	}
	return out
}

func (v *validator) modelNames() []string {
	out := make([]string, 0, len(v.cfg.Models))
	for _, m := range v.cfg.Models {
		out = append(out, m.Name)
	}
	return out
}

func (v *validator) list(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	names = slices.Clone(names)
	sort.Strings(names)
	names = slices.Compact(names)
	if len(names) > 10 {
		return strings.Join(names[:10], ", ") + fmt.Sprintf(" and %d more", len(names)-10)
	}
	return strings.Join(names, ", ")
}

// suggest returns ` Did you mean "x"?` for the closest name, or "".
func suggest(got string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := levenshtein(got, n); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}

func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

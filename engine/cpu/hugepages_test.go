package cpu

import (
	"slices"
	"testing"
)

func TestWithHugePages(t *testing.T) {
	cases := []struct {
		name    string
		env     []string
		want    []string
		changed bool
	}{
		{"added", []string{"HOME=/root"}, []string{"HOME=/root", "GLIBC_TUNABLES=glibc.malloc.hugetlb=1"}, true},
		{"appended to other tunables", []string{"GLIBC_TUNABLES=glibc.malloc.arena_max=2", "A=b"},
			[]string{"GLIBC_TUNABLES=glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1", "A=b"}, true},
		{"empty variable", []string{"GLIBC_TUNABLES="}, []string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=1"}, true},
		{"already on", []string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=1"}, []string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=1"}, false},
		{"the user opted out", []string{"GLIBC_TUNABLES=glibc.malloc.arena_max=2:glibc.malloc.hugetlb=0"},
			[]string{"GLIBC_TUNABLES=glibc.malloc.arena_max=2:glibc.malloc.hugetlb=0"}, false},
	}
	for _, c := range cases {
		got, changed := WithHugePages(c.env)
		if !slices.Equal(got, c.want) || changed != c.changed {
			t.Errorf("%s: WithHugePages(%q) = %q, %v; want %q, %v", c.name, c.env, got, changed, c.want, c.changed)
		}
	}
}

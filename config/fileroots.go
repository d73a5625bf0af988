package config

import (
	"fmt"
	"net/url"
	"strings"
)

// fileRoots checks a node's file_roots: clean absolute folders, each once.
func (v *validator) fileRoots(n *Node) {
	seen := map[string]bool{}
	for i, root := range n.FileRoots {
		at := rangeOf(n.ranges, fmt.Sprintf("file_roots[%d]", i), n.Range("file_roots"))
		if err := checkAbsPath(root); err != nil {
			v.errorf(at, "Invalid file_roots", "file_roots of node %q: %v.", n.Name, err)
		} else if seen[root] {
			v.errorf(at, "Duplicate file root", "file_roots of node %q lists %q twice.", n.Name, root)
		}
		seen[root] = true
	}
}

// underRoot reports whether the absolute, clean path p lies inside one of
// roots (or when there are no roots: then nothing is restricted).
func underRoot(p string, roots []string) bool {
	if len(roots) == 0 {
		return true
	}
	for _, r := range roots {
		if r == "/" || p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

// fileRootsOfModels reports each file:// model that a pool places on a node
// whose file_roots do not contain it: that node's hive would refuse it.
func (v *validator) fileRootsOfModels() {
	for _, pl := range v.cfg.Placements() {
		if !strings.HasPrefix(pl.Model.Source, "file:") || CheckSource(pl.Model.Source) != nil {
			continue
		}
		u, err := url.Parse(pl.Model.Source)
		if err != nil || underRoot(u.Path, pl.Node.FileRoots) {
			continue
		}
		v.errorf(pl.Model.Range("source"), "Model outside file_roots", "model %q is the file %s, which is outside the file_roots of node %q (%s), where a pool places it; that hive would refuse it. Add its folder to file_roots, or move the file.",
			pl.Model.Name, u.Path, pl.Node.Name, strings.Join(pl.Node.FileRoots, ", "))
	}
}

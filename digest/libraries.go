package digest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// LibraryFiles lists the regular files of the library folder dir, sorted by
// name (none when dir does not exist).
func LibraryFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the library folder: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// WithLibraries identifies a binary together with the library folder it
// loads: the binary's own sha256 when libDir holds no files, else the sha256
// of a manifest with one "<sha256>  <name>" line for the binary ("rbee") and
// for each library ("lib/<file>"). A changed, added or removed library
// changes it, as a changed binary does.
func WithLibraries(bin, libDir string) (string, error) {
	sum, err := Cached(bin)
	if err != nil {
		return "", err
	}
	files, err := LibraryFiles(libDir)
	if err != nil || len(files) == 0 {
		return sum, err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s  rbee\n", sum)
	for _, f := range files {
		s, err := Cached(filepath.Join(libDir, f))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s  lib/%s\n", s, f)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

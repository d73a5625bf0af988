// Package digest computes the sha256 checksums rbee identifies files by: hive
// binaries, copies uploaded to nodes, and model files.
package digest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"
)

// File returns the hex sha256 and the size of the file at path.
func File(path string) (sum string, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	size, err = io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("reading %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}

var cache = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

// Cached is File's checksum memoised by path, size and modification time, for
// large files that are hashed again and again (the rbee executable).
func Cached(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	key := fmt.Sprintf("%s|%d|%d", path, fi.Size(), fi.ModTime().UnixNano())
	cache.Lock()
	defer cache.Unlock()
	if s, ok := cache.m[key]; ok {
		return s, nil
	}
	s, _, err := File(path)
	if err != nil {
		return "", err
	}
	cache.m[key] = s
	return s, nil
}

// Short is the first 12 hex digits of sum, enough to tell checksums apart in
// messages.
func Short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

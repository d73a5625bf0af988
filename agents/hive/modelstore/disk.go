package modelstore

import (
	"errors"
	"net/http"
	"syscall"

	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/gguf"
)

// DiskFree returns the bytes available to an unprivileged writer in dir's filesystem.
func DiskFree(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// isNoSpace reports whether err is a full filesystem (or a quota).
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// insufficientDisk is the 507 INSUFFICIENT_DISK error for what (a download,
// a generated model) that needs need more bytes in dir, which has free.
func insufficientDisk(what, dir string, need, free int64) *api.Error {
	return api.Errorf(http.StatusInsufficientStorage, "INSUFFICIENT_DISK",
		"not enough disk space for %s: %s needed, %s free in %s; free some space or use another --data-dir",
		what, gguf.FormatBytes(need), gguf.FormatBytes(free), dir).
		WithDetails(map[string]any{"needed_bytes": need, "free_bytes": free, "dir": dir})
}

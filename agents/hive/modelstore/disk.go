package modelstore

import "syscall"

// DiskFree returns the bytes available to an unprivileged writer in dir's filesystem.
func DiskFree(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

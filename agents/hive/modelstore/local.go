package modelstore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/rbee-dev/rbee/api"
)

// A file:// model is the operator's own file: the store reads it in place and
// never writes, moves or deletes it. Only a regular file is read (no symlink,
// FIFO, device or socket, checked with Lstat before anything is opened and
// again on the open descriptor), and with FileRoots set only inside them.

// checkFileRoots refuses a path outside roots (none: every path is allowed).
// The path's folder is resolved through symlinks, so a link inside a root
// that points out of it is refused too.
func checkFileRoots(path string, roots []string) error {
	if len(roots) == 0 {
		return nil
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		dir = filepath.Dir(path) // the open below reports the missing folder
	}
	for _, root := range roots {
		r, err := filepath.EvalSymlinks(root)
		if err != nil {
			r = filepath.Clean(root)
		}
		if rel, err := filepath.Rel(r, dir); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return nil
		}
	}
	return api.Errorf(http.StatusForbidden, "FILE_OUTSIDE_ROOTS",
		"file://%s is outside the folders this hive may read models from (%s); move the file into one of them or add its folder to the node's file_roots (rbee hive --file-roots DIR)",
		path, strings.Join(roots, ", ")).
		WithDetails(map[string]any{"path": path, "file_roots": roots})
}

// notRegular is the error for a source that is not a plain file.
func notRegular(path string, mode fs.FileMode) error {
	kind := "not a regular file"
	switch {
	case mode&fs.ModeSymlink != 0:
		kind = "a symbolic link (point the source at the file itself)"
	case mode.IsDir():
		kind = "a directory"
	case mode&fs.ModeNamedPipe != 0:
		kind = "a named pipe (FIFO)"
	case mode&(fs.ModeDevice|fs.ModeCharDevice) != 0:
		kind = "a device"
	case mode&fs.ModeSocket != 0:
		kind = "a socket"
	}
	return api.Errorf(http.StatusBadRequest, "NOT_A_REGULAR_FILE", "file://%s is %s; a local model must be a regular .gguf file", path, kind).
		WithDetails(map[string]any{"path": path})
}

// hashLocal checks that path is a regular file inside roots and returns its
// sha256 and size, reading it through a descriptor opened without following
// links and without blocking, so a file swapped for a FIFO cannot hang the hive.
func hashLocal(path string, roots []string) (sum string, size int64, err error) {
	if err := checkFileRoots(path, roots); err != nil {
		return "", 0, err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return "", 0, localNotFound(path, err)
	}
	if !fi.Mode().IsRegular() {
		return "", 0, notRegular(path, fi.Mode())
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return "", 0, notRegular(path, fs.ModeSymlink)
		}
		return "", 0, localNotFound(path, err)
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return "", 0, localNotFound(path, err)
	}
	if !fi.Mode().IsRegular() {
		return "", 0, notRegular(path, fi.Mode())
	}
	h := sha256.New()
	if size, err = io.Copy(h, f); err != nil {
		return "", 0, localNotFound(path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}

func localNotFound(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is in the message already
	}
	return api.Errorf(http.StatusNotFound, "MODEL_NOT_FOUND", "model not found: cannot read %s on this node: %v", path, err).
		WithDetails(map[string]any{"path": path})
}

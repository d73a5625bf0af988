package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/rbee-dev/rbee/digest"
)

// Local runs commands on this machine without a shell.
type Local struct{}

// NewLocal returns the transport for connection = "local" nodes.
func NewLocal() *Local { return &Local{} }

// Run executes argv directly (no shell is involved, so nothing needs quoting).
func (l *Local) Run(ctx context.Context, argv []string, stdin io.Reader) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("transport: empty command")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// A process group of its own: a Ctrl-C in the terminal stops apply from
	// starting new steps but must not kill the command of a step in flight.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.Bytes(), &ExitError{Argv: argv, Code: ee.ExitCode(), Stderr: errb.String()}
	}
	if err != nil {
		return out.Bytes(), fmt.Errorf("run %s: %w", argv[0], err)
	}
	return out.Bytes(), nil
}

// Upload copies a file through a temporary sibling, checks its sha256 and
// renames it into place.
func (l *Local) Upload(ctx context.Context, localPath, remotePath string, mode fs.FileMode) error {
	want, err := digest.Cached(localPath)
	if err != nil {
		return fmt.Errorf("upload %s: %w", localPath, err)
	}
	if err := os.MkdirAll(filepath.Dir(remotePath), 0o755); err != nil {
		return fmt.Errorf("upload: create %s: %w", filepath.Dir(remotePath), err)
	}
	tmp := filepath.Join(filepath.Dir(remotePath), "."+filepath.Base(remotePath)+".tmp-"+randomHex())
	if err := copyFile(ctx, localPath, tmp, mode); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("upload %s to %s: %w", localPath, remotePath, err)
	}
	got, _, err := digest.File(tmp) // not Cached: the temporary name is used once
	if err == nil && got != want {
		err = fmt.Errorf("sha256 of the copy is %s, want %s", got, want)
	}
	if err == nil {
		err = os.Rename(tmp, remotePath)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("upload %s to %s: %w", localPath, remotePath, err)
	}
	return nil
}

func copyFile(ctx context.Context, src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, ctxReader{ctx, in}); err != nil {
		out.Close()
		return err
	}
	if err := out.Chmod(mode); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Close does nothing for the local transport.
func (l *Local) Close() error { return nil }

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func randomHex() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

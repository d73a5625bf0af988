package modelstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/backoff"
	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/digest"
	"github.com/rbee-dev/rbee/gguf"
)

// Download defaults, as in the behaviour contract.
const (
	DefaultAttempts     = 6
	DefaultStallTimeout = 60 * time.Second
	DefaultRetryBase    = 100 * time.Millisecond
)

// PartialSuffix is appended to a file being downloaded; only a verified file
// loses it.
const PartialSuffix = ".partial"

// Downloader fetches one URL into a local file: into NAME.partial first,
// resuming with Range after a cut, retrying with backoff, detecting stalls,
// and verifying sha256 before the file is renamed into place.
type Downloader struct {
	Client       *http.Client  // nil: a client with sane dial timeouts
	Attempts     int           // 0: DefaultAttempts
	StallTimeout time.Duration // 0: DefaultStallTimeout
	Retry        backoff.Policy
	Log          *slog.Logger
	// DiskFree returns the free bytes of the folder; nil uses the real
	// filesystem. The disk is checked before any byte is fetched.
	DiskFree func(dir string) (int64, error)
	// Stats counts what the downloader did, for metrics.
	Stats DownloadStats
}

// DownloadStats are running totals of a Downloader, safe for concurrent use.
type DownloadStats struct {
	Bytes    atomic.Int64 // bytes received and written
	Failures atomic.Int64 // downloads that gave up (not counting cancellations)
	Resumes  atomic.Int64 // attempts that continued a partial file with Range
}

// Fetch describes one download.
type Fetch struct {
	URL      string
	Token    string // bearer token (HF_TOKEN) sent to the origin only
	Dest     string // final path
	SHA256   string // pin (lowercase hex); empty: trust the server's linked etag if it is a sha256
	Describe string // what is downloaded, for messages ("hf:org/repo file x.gguf")
	Progress func(hiveapi.Progress)
}

// Result is a verified download.
type Result struct {
	Path     string
	Size     int64
	SHA256   string
	Attempts int
	Resumed  bool // some attempt continued from a partial file with Range
}

// remote is what a HEAD told about the file.
type remote struct {
	size   int64  // -1 if unknown
	etag   string // sha256 from X-Linked-Etag, or ""
	commit string // X-Repo-Commit (Hugging Face), or ""
}

// permanent marks an error that retrying cannot fix.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

func (d *Downloader) attempts() int {
	if d.Attempts > 0 {
		return d.Attempts
	}
	return DefaultAttempts
}

func (d *Downloader) stall() time.Duration {
	if d.StallTimeout > 0 {
		return d.StallTimeout
	}
	return DefaultStallTimeout
}

func (d *Downloader) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.Default()
}

func (d *Downloader) retry() backoff.Policy {
	if d.Retry.Base > 0 {
		return d.Retry
	}
	return backoff.Policy{Base: DefaultRetryBase, Jitter: 0.5}
}

var defaultClient = &http.Client{Transport: &http.Transport{
	Proxy:               http.ProxyFromEnvironment,
	TLSHandshakeTimeout: 15 * time.Second,
	IdleConnTimeout:     30 * time.Second,
}}

func (d *Downloader) client() *http.Client {
	if d.Client != nil {
		return d.Client
	}
	return defaultClient
}

// Get downloads f.URL to f.Dest and returns the verified result. Errors are
// *api.Error with the codes MODEL_NOT_FOUND (404), ACCESS_DENIED (403),
// INSUFFICIENT_DISK (507), CHECKSUM_MISMATCH or DOWNLOAD_FAILED (502).
func (d *Downloader) Get(ctx context.Context, f Fetch) (Result, error) {
	res, err := d.get(ctx, f)
	if err != nil && ctx.Err() == nil {
		d.Stats.Failures.Add(1)
	}
	return res, err
}

func (d *Downloader) get(ctx context.Context, f Fetch) (Result, error) {
	partial := f.Dest + PartialSuffix
	res := Result{Path: f.Dest}
	var rem *remote
	var lastErr error
	n := d.attempts()
	for attempt := 1; attempt <= n; attempt++ {
		if attempt > 1 {
			delay := d.retry().Delay(attempt - 1)
			d.log().Warn("download attempt failed; retrying", "what", f.Describe, "attempt", attempt-1, "of", n, "retry_in", delay.Round(time.Millisecond), "err", lastErr)
			select {
			case <-ctx.Done():
				return res, ctx.Err() // the partial file stays for the next Get to resume
			case <-time.After(delay):
			}
		}
		res.Attempts = attempt
		if rem == nil {
			r, err := d.head(ctx, f)
			if err == nil {
				rem = &r
				err = d.checkDisk(f, partial, r.size)
			}
			if err != nil {
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				if isPermanent(err) {
					return res, d.giveUp(partial, err)
				}
				lastErr = err
				continue
			}
		}
		sum, size, resumed, err := d.once(ctx, f, partial, *rem)
		res.Resumed = res.Resumed || resumed
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err() // cancelled (Ctrl-C, hive shutdown): keep the bytes for a resume
			}
			if isPermanent(err) {
				return res, d.giveUp(partial, err)
			}
			lastErr = err
			continue
		}
		want := f.SHA256
		if want == "" {
			want = rem.etag
		}
		if want != "" && sum != want {
			os.Remove(partial)
			lastErr = api.Errorf(http.StatusBadGateway, "CHECKSUM_MISMATCH",
				"%s: the downloaded file has sha256 %s but %s was expected; the file was deleted and is not catalogued", f.Describe, sum, want).
				WithDetails(map[string]any{"expected": want, "actual": sum, "attempts": attempt})
			continue
		}
		if err := os.Rename(partial, f.Dest); err != nil {
			os.Remove(partial)
			return res, fmt.Errorf("move the download into place at %s: %w", f.Dest, err)
		}
		res.Size, res.SHA256 = size, sum
		return res, nil
	}
	os.Remove(partial)
	var ae *api.Error
	if errors.As(lastErr, &ae) && ae.Code == "CHECKSUM_MISMATCH" {
		ae.Message += fmt.Sprintf(" (gave up after %d attempts)", n)
		return res, ae
	}
	return res, api.Errorf(http.StatusBadGateway, "DOWNLOAD_FAILED", "%s: download failed after %d attempts: %v", f.Describe, n, lastErr).
		WithDetails(map[string]any{"url": f.URL, "attempts": n})
}

func isPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

func unwrapPermanent(err error) error {
	var p permanent
	if errors.As(err, &p) {
		return p.err
	}
	return err
}

// checkDisk refuses a download that cannot fit in the destination folder.
func (d *Downloader) checkDisk(f Fetch, partial string, size int64) error {
	if size < 0 {
		return nil
	}
	have := int64(0)
	if fi, err := os.Stat(partial); err == nil {
		have = fi.Size()
	}
	need := size - have
	if need <= 0 {
		return nil
	}
	dir := filepath.Dir(f.Dest)
	free, err := d.free(dir)
	if err != nil {
		return nil // cannot tell; the write will fail loudly if it does not fit
	}
	if need > free {
		return permanent{insufficientDisk(f.Describe, dir, need, free)}
	}
	return nil
}

// free returns the free bytes of dir's filesystem (through DiskFree if set).
func (d *Downloader) free(dir string) (int64, error) {
	if d.DiskFree != nil {
		return d.DiskFree(dir)
	}
	return DiskFree(dir)
}

// diskFull is the error for a disk that filled up while writing the partial
// file: the bytes still missing and what is free now.
func (d *Downloader) diskFull(f Fetch, partial string, got, total int64) error {
	dir := filepath.Dir(f.Dest)
	free, _ := d.free(dir)
	need := total - got
	if total < 0 {
		need = 0 // unknown size
	}
	e := insufficientDisk(f.Describe, dir, need, free)
	e.Message = "the disk filled up during the download: " + e.Message +
		fmt.Sprintf("; the %s received so far stay in %s and the next attempt resumes from there", gguf.FormatBytes(got), filepath.Base(partial))
	e.Details["received_bytes"] = got
	return permanent{e}
}

// giveUp ends a download on a permanent error. The partial file is deleted,
// except when the disk is full: then it is kept, so that a retry after
// space is freed resumes from it.
func (d *Downloader) giveUp(partial string, err error) error {
	err = unwrapPermanent(err)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != "INSUFFICIENT_DISK" {
		os.Remove(partial)
	}
	return err
}

// once is one download attempt: it continues the partial file with Range when
// there is one and returns the sha256 and size of the complete file.
func (d *Downloader) once(ctx context.Context, f Fetch, partial string, rem remote) (sum string, size int64, resumed bool, err error) {
	out, err := os.OpenFile(partial, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		if isNoSpace(err) {
			return "", 0, false, d.diskFull(f, partial, 0, rem.size)
		}
		return "", 0, false, permanent{fmt.Errorf("create %s: %w", partial, err)}
	}
	defer out.Close()
	fi, err := out.Stat()
	if err != nil {
		return "", 0, false, err
	}
	offset := fi.Size()
	if rem.size >= 0 && offset > rem.size {
		offset = 0
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errStalled := fmt.Errorf("stalled: no data for %s", d.stall())
	watchdog := time.AfterFunc(d.stall(), func() { cancel(errStalled) })
	defer watchdog.Stop()

	total := rem.size
	if offset > 0 && offset == total {
		// A previous attempt got every byte; only the check is left.
	} else {
		req, err := d.newRequest(ctx, http.MethodGet, f)
		if err != nil {
			return "", 0, false, err
		}
		if offset > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		}
		resp, err := d.client().Do(req)
		if err != nil {
			return "", 0, false, attemptErr(ctx, err)
		}
		defer resp.Body.Close()
		if offset, resumed, err = d.resumeAt(f, resp, out, offset); err != nil {
			return "", 0, false, err
		}
		if total < 0 && resp.ContentLength >= 0 {
			total = offset + resp.ContentLength
		}
		if err := out.Truncate(offset); err != nil {
			return "", 0, false, err
		}
		if _, err := out.Seek(offset, io.SeekStart); err != nil {
			return "", 0, false, err
		}
		pr := newProgress(f.Progress, offset, total)
		got, err := d.copyBody(ctx, f, partial, out, resp.Body, offset, total, watchdog, pr)
		if err != nil {
			return "", 0, resumed, err
		}
		pr.update(got, true)
		if total >= 0 && got != total {
			return "", 0, resumed, fmt.Errorf("connection ended at byte %d of %d", got, total)
		}
	}
	watchdog.Stop()
	if err := out.Sync(); err != nil {
		if isNoSpace(err) {
			return "", 0, resumed, d.diskFull(f, partial, 0, rem.size)
		}
		return "", 0, resumed, err
	}
	sum, size, err = digest.File(partial)
	return sum, size, resumed, err
}

// resumeAt reads the answer to a (ranged) GET: the offset the body starts
// at, and whether it resumes the partial file out.
func (d *Downloader) resumeAt(f Fetch, resp *http.Response, out *os.File, offset int64) (int64, bool, error) {
	switch {
	case resp.StatusCode == http.StatusPartialContent && offset > 0:
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != offset {
			out.Truncate(0) // the server answered another range: start over
			return 0, false, fmt.Errorf("server answered range %q to a request from byte %d", resp.Header.Get("Content-Range"), offset)
		}
		d.Stats.Resumes.Add(1)
		return offset, true, nil
	case resp.StatusCode == http.StatusOK:
		return 0, false, nil // no range support: start over
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		out.Truncate(0)
		return 0, false, fmt.Errorf("server refused to resume at byte %d (HTTP 416); starting over", offset)
	}
	return 0, false, statusError(f, resp.StatusCode)
}

// copyBody appends the response body to out from offset, keeping the stall
// watchdog and the progress up to date; it returns the bytes the file holds.
func (d *Downloader) copyBody(ctx context.Context, f Fetch, partial string, out *os.File, body io.Reader, offset, total int64, watchdog *time.Timer, pr *progress) (int64, error) {
	buf := make([]byte, 256<<10)
	got := offset
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			watchdog.Reset(d.stall())
			if _, err := out.Write(buf[:n]); err != nil {
				if isNoSpace(err) {
					return got, d.diskFull(f, partial, got, total)
				}
				return got, permanent{fmt.Errorf("write %s: %w", partial, err)}
			}
			got += int64(n)
			d.Stats.Bytes.Add(int64(n))
			pr.update(got, false)
		}
		if rerr == io.EOF {
			return got, nil
		}
		if rerr != nil {
			return got, fmt.Errorf("connection lost at byte %d: %w", got, attemptErr(ctx, rerr))
		}
	}
}

// attemptErr prefers the stall cause over the generic "context canceled".
func attemptErr(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
		return c
	}
	return err
}

package modelstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Remote is what an origin tells about a file before any byte of it is
// fetched: what a lock file records.
type Remote struct {
	Size   int64  // -1 if the origin did not say
	SHA256 string // from X-Linked-Etag (Hugging Face LFS files), or ""
	Commit string // X-Repo-Commit (Hugging Face), or ""
}

// Head asks the origin of f about the file with one HEAD (following
// redirects, collecting the headers of every hop). Errors are *api.Error
// with MODEL_NOT_FOUND or ACCESS_DENIED, or plain errors for the rest.
func (d *Downloader) Head(ctx context.Context, f Fetch) (Remote, error) {
	r, err := d.head(ctx, f)
	if err != nil {
		return Remote{}, unwrapPermanent(err)
	}
	return Remote{Size: r.size, SHA256: r.etag, Commit: r.commit}, nil
}

// Hash streams the file at f.URL through sha256 without writing it
// anywhere, for an origin that gives no checksum. It returns the digest
// and the size; a stall of StallTimeout ends it with an error.
func (d *Downloader) Hash(ctx context.Context, f Fetch) (sum string, size int64, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errStalled := fmt.Errorf("stalled: no data for %s", d.stall())
	watchdog := time.AfterFunc(d.stall(), func() { cancel(errStalled) })
	defer watchdog.Stop()
	req, err := d.newRequest(ctx, http.MethodGet, f)
	if err != nil {
		return "", 0, unwrapPermanent(err)
	}
	resp, err := d.client().Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("GET %s: %w", f.URL, attemptErr(ctx, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", 0, unwrapPermanent(statusError(f, resp.StatusCode))
	}
	h := sha256.New()
	buf := make([]byte, 256<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			watchdog.Reset(d.stall())
			h.Write(buf[:n])
			size += int64(n)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return "", 0, fmt.Errorf("GET %s: connection lost at byte %d: %w", f.URL, size, attemptErr(ctx, rerr))
		}
	}
	if resp.ContentLength >= 0 && size != resp.ContentLength {
		return "", 0, fmt.Errorf("GET %s: connection ended at byte %d of %d", f.URL, size, resp.ContentLength)
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}

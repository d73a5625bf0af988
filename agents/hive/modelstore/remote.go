package modelstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/rbee-dev/rbee/api"
)

// statusError maps an HTTP status from the origin to an error; 404 and
// 401/403 are permanent, the rest can be retried.
func statusError(f Fetch, status int) error {
	switch status {
	case http.StatusNotFound:
		return permanent{api.Errorf(http.StatusNotFound, "MODEL_NOT_FOUND",
			"model not found: %s does not exist (HTTP 404 from %s); check the repository, file name and revision", f.Describe, f.URL).
			WithDetails(map[string]any{"url": f.URL})}
	case http.StatusUnauthorized, http.StatusForbidden:
		hint := "set HF_TOKEN in the node's environment to a token that can read it (and accept the model's licence on huggingface.co if it is gated)"
		if f.Token != "" {
			hint = "the HF_TOKEN in the node's environment was sent but does not grant access: check the token and accept the model's licence on huggingface.co if it is gated"
		}
		return permanent{api.Errorf(http.StatusForbidden, "ACCESS_DENIED",
			"access denied to %s (HTTP %d from %s): %s", f.Describe, status, f.URL, hint).
			WithDetails(map[string]any{"url": f.URL, "upstream_status": status})}
	}
	return fmt.Errorf("HTTP %d from %s", status, f.URL)
}

func (d *Downloader) newRequest(ctx context.Context, method string, f Fetch) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, f.URL, nil)
	if err != nil {
		return nil, permanent{fmt.Errorf("bad download URL %q: %w", f.URL, err)}
	}
	req.Header.Set("User-Agent", "rbee-hive")
	if f.Token != "" {
		// net/http drops Authorization when a redirect leaves the origin's
		// host, so the token never reaches a CDN.
		req.Header.Set("Authorization", "Bearer "+f.Token)
	}
	return req, nil
}

// head asks the origin for the size and the linked etag. Hugging Face puts
// X-Linked-Size and X-Linked-Etag on the redirect to its CDN, so headers are
// collected from every hop.
func (d *Downloader) head(ctx context.Context, f Fetch) (remote, error) {
	ctx, cancel := context.WithTimeout(ctx, d.stall())
	defer cancel()
	req, err := d.newRequest(ctx, http.MethodHead, f)
	if err != nil {
		return remote{}, err
	}
	r := remote{size: -1}
	note := func(h http.Header) {
		if r.commit == "" {
			r.commit = h.Get("X-Repo-Commit")
		}
		if r.etag == "" {
			if e := linkedSHA256(h.Get("X-Linked-Etag")); e != "" {
				r.etag = e
			}
		}
		if r.size < 0 {
			if n, err := strconv.ParseInt(h.Get("X-Linked-Size"), 10, 64); err == nil && n >= 0 {
				r.size = n
			}
		}
	}
	c := *d.client()
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		if req.Response != nil {
			note(req.Response.Header)
		}
		return nil
	}
	resp, err := c.Do(req)
	if err != nil {
		return remote{}, fmt.Errorf("HEAD %s: %w", f.URL, err)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return remote{}, statusError(f, resp.StatusCode)
	case resp.StatusCode >= 500:
		return remote{}, fmt.Errorf("HEAD %s: HTTP %d", f.URL, resp.StatusCode)
	case resp.StatusCode/100 != 2:
		// Some servers refuse HEAD (405, 501…): go on without size and etag.
		return remote{size: -1}, nil
	}
	note(resp.Header)
	if r.size < 0 && resp.ContentLength >= 0 {
		r.size = resp.ContentLength
	}
	return r, nil
}

// linkedSHA256 returns the etag if it is a sha256 digest (Hugging Face LFS
// files), else "" (git blob etags are sha1 and cannot be checked).
func linkedSHA256(etag string) string {
	e := strings.ToLower(strings.Trim(strings.TrimPrefix(etag, "W/"), `"`))
	if sha256Re.MatchString(e) {
		return e
	}
	return ""
}

package modelstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/backoff"
	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/api"
)

// faultServer serves one blob at /f behind a redirect from /r, with faults
// chosen per GET number (1-based).
type faultServer struct {
	blob   []byte
	status int                // answer every request with this status when set
	fault  func(n int) string // "", "cut", "corrupt", "stall", "500"
	mu     sync.Mutex
	gets   int
	ranges []string
}

func (s *faultServer) handler(t *testing.T) http.Handler {
	sum := sha256.Sum256(s.blob)
	etag := hex.EncodeToString(sum[:])
	mux := http.NewServeMux()
	mux.HandleFunc("/r", func(w http.ResponseWriter, r *http.Request) {
		if s.status != 0 {
			w.WriteHeader(s.status)
			return
		}
		w.Header().Set("X-Linked-Etag", `"`+etag+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(s.blob)))
		http.Redirect(w, r, "/f", http.StatusFound)
	})
	mux.HandleFunc("/f", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			w.Header().Set("Content-Length", strconv.Itoa(len(s.blob)))
			return
		}
		s.mu.Lock()
		s.gets++
		n := s.gets
		s.ranges = append(s.ranges, r.Header.Get("Range"))
		s.mu.Unlock()
		f := ""
		if s.fault != nil {
			f = s.fault(n)
		}
		body := s.blob
		if f == "corrupt" {
			body = append([]byte(nil), s.blob...)
			body[len(body)/2] ^= 0xff
		}
		if f == "500" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		start := 0
		if rg := r.Header.Get("Range"); rg != "" {
			v := strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-")
			start, _ = strconv.Atoi(v)
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(body)-1, len(body)))
			w.Header().Set("Content-Length", strconv.Itoa(len(body)-start))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		switch f {
		case "cut":
			w.Write(body[start : start+(len(body)-start)/2])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		case "stall":
			w.Write(body[start : start+10])
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		w.Write(body[start:])
	})
	return mux
}

func testDownloader() *Downloader {
	return &Downloader{
		StallTimeout: 300 * time.Millisecond,
		Retry:        backoff.Policy{Base: time.Millisecond},
	}
}

func TestDownloaderGet(t *testing.T) {
	blob := []byte(strings.Repeat("rbee model bytes ", 20000))
	sum := sha256.Sum256(blob)
	want := hex.EncodeToString(sum[:])
	tests := []struct {
		name       string
		status     int
		fault      func(n int) string
		pin        string
		diskFree   int64
		wantCode   string
		wantGets   int
		wantRange  bool
		wantInText string
	}{
		{name: "clean download through a redirect", wantGets: 1},
		{name: "cut once resumes with Range", fault: func(n int) string { return map[int]string{1: "cut"}[n] }, wantGets: 2, wantRange: true},
		{name: "stall once is retried", fault: func(n int) string { return map[int]string{1: "stall"}[n] }, wantGets: 2, wantRange: true},
		{name: "server error once is retried", fault: func(n int) string { return map[int]string{1: "500"}[n] }, wantGets: 2},
		{name: "corrupt once is deleted and fetched again", fault: func(n int) string { return map[int]string{1: "corrupt"}[n] }, wantGets: 2},
		{name: "always corrupt gives up", fault: func(int) string { return "corrupt" }, wantCode: "CHECKSUM_MISMATCH", wantGets: 6, wantInText: "gave up after 6 attempts"},
		{name: "pin that does not match", pin: strings.Repeat("0", 64), wantCode: "CHECKSUM_MISMATCH", wantGets: 6},
		{name: "404 names the file", status: 404, wantCode: "MODEL_NOT_FOUND", wantInText: "org/repo file x.gguf"},
		{name: "401 gives the token hint", status: 401, wantCode: "ACCESS_DENIED", wantInText: "HF_TOKEN"},
		{name: "403 gives the token hint", status: 403, wantCode: "ACCESS_DENIED", wantInText: "HF_TOKEN"},
		{name: "disk too small is refused before any GET", diskFree: 1000, wantCode: "INSUFFICIENT_DISK", wantInText: "needed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := &faultServer{blob: blob, status: tt.status, fault: tt.fault}
			srv := httptest.NewServer(fs.handler(t))
			defer srv.Close()
			d := testDownloader()
			if tt.diskFree > 0 {
				d.DiskFree = func(string) (int64, error) { return tt.diskFree, nil }
			}
			dest := filepath.Join(t.TempDir(), "x.gguf")
			var events []hiveapi.Progress
			res, err := d.Get(context.Background(), Fetch{
				URL: srv.URL + "/r", Dest: dest, SHA256: tt.pin, Describe: "hf:org/repo file x.gguf",
				Progress: func(p hiveapi.Progress) { events = append(events, p) },
			})
			if _, serr := os.Stat(dest + PartialSuffix); serr == nil {
				t.Errorf("a .partial file was left behind")
			}
			if tt.wantCode != "" {
				var ae *api.Error
				if !errors.As(err, &ae) || ae.Code != tt.wantCode {
					t.Fatalf("err = %v, want code %s", err, tt.wantCode)
				}
				if !strings.Contains(ae.Message, tt.wantInText) {
					t.Errorf("message %q does not contain %q", ae.Message, tt.wantInText)
				}
				if _, serr := os.Stat(dest); serr == nil {
					t.Errorf("the file exists after a failed download")
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if res.SHA256 != want || res.Size != int64(len(blob)) {
					t.Errorf("got sha %s size %d, want %s %d", res.SHA256, res.Size, want, len(blob))
				}
				got, _ := os.ReadFile(dest)
				if string(got) != string(blob) {
					t.Errorf("file content differs")
				}
				if len(events) == 0 || events[len(events)-1].Bytes != int64(len(blob)) || events[len(events)-1].Total != int64(len(blob)) {
					t.Errorf("last progress event %+v, want bytes=total=%d", events, len(blob))
				}
				if res.Resumed != tt.wantRange {
					t.Errorf("Resumed = %v, want %v", res.Resumed, tt.wantRange)
				}
			}
			if tt.wantGets > 0 && fs.gets != tt.wantGets {
				t.Errorf("%d GETs, want %d", fs.gets, tt.wantGets)
			}
			if tt.status != 0 || tt.diskFree > 0 {
				if fs.gets != 0 {
					t.Errorf("%d GETs after a refusal, want none", fs.gets)
				}
			}
			hasRange := false
			for _, r := range fs.ranges {
				hasRange = hasRange || r != ""
			}
			if hasRange != tt.wantRange {
				t.Errorf("ranges sent %q, want a Range header: %v", fs.ranges, tt.wantRange)
			}
		})
	}
}

func TestContentRangeStart(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"bytes 100-199/200", 100, true},
		{"bytes 0-0/1", 0, true},
		{"bytes */200", 0, false},
		{"", 0, false},
		{"items 1-2/3", 0, false},
	}
	for _, tt := range tests {
		got, ok := contentRangeStart(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("contentRangeStart(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// A cancelled download (Ctrl-C on apply, a hive shutting down) keeps its
// bytes; the next Get continues them with a Range request.
func TestDownloaderCancelKeepsPartialForResume(t *testing.T) {
	blob := []byte(strings.Repeat("rbee model bytes ", 20000))
	fs := &faultServer{blob: blob, fault: func(n int) string { return map[int]string{1: "stall"}[n] }}
	srv := httptest.NewServer(fs.handler(t))
	defer srv.Close()
	dest := filepath.Join(t.TempDir(), "x.gguf")
	f := Fetch{URL: srv.URL + "/r", Dest: dest, Describe: "x"}

	ctx, cancel := context.WithCancel(context.Background())
	go func() { // once some bytes are on disk, stop as Ctrl-C would
		for {
			if fi, err := os.Stat(dest + PartialSuffix); err == nil && fi.Size() > 0 {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	d := testDownloader()
	d.StallTimeout = time.Minute
	if _, err := d.Get(ctx, f); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Get: err = %v, want context.Canceled", err)
	}
	fi, err := os.Stat(dest + PartialSuffix)
	if err != nil || fi.Size() == 0 {
		t.Fatalf("the partial file is gone after a cancel (%v); it must stay for a resume", err)
	}

	res, err := d.Get(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || fs.ranges[len(fs.ranges)-1] != fmt.Sprintf("bytes=%d-", fi.Size()) {
		t.Errorf("second Get sent ranges %q (resumed %v), want one from byte %d", fs.ranges, res.Resumed, fi.Size())
	}
	if got, _ := os.ReadFile(dest); string(got) != string(blob) {
		t.Errorf("the resumed file differs from the source")
	}
}

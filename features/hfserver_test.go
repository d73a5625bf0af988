package features

// An in-process HTTP server that speaks the Hugging Face "resolve" protocol,
// so that downloads run the real code path offline. Any area can use it:
//
//	Given a Hugging Face server serving "org/repo" file "tiny.gguf"
//	Given a Hugging Face server serving "org/repo" file "m.gguf" from "path/in/the/scenario/dir"
//
// The first form serves the tiny synth model (seed 1). Each step starts the
// server once per scenario (later ones add files) and sets:
//
//	${HF_ENDPOINT}   the server's base URL, also exported as HF_ENDPOINT to commands
//	${HF_SHA256}     the sha256 of the last file added
//	${HF_SIZE}       its size in bytes
//
// The protocol, as huggingface.co serves it:
//   - HEAD|GET /{org}/{repo}/resolve/{revision}/{file} answers 302 to /cdn/{sha256}
//     with X-Linked-Etag: "<sha256>", X-Linked-Size and ETag (the CDN hop);
//   - HEAD /cdn/{sha256} answers Content-Length; GET serves the bytes and honours
//     "Range: bytes=N-" with 206 and Content-Range;
//   - unknown repos or files answer 404 with X-Error-Code: EntryNotFound.
//
// Faults (each applies to the GETs of the file bytes, counted from 1):
//
//	Given the Hugging Face server cuts the connection once after 100000 bytes
//	Given the Hugging Face server stalls once after 1000 bytes
//	Given the Hugging Face server serves corrupt bytes once|always
//	Given the Hugging Face server answers 404|401|403|500 to every request
//	Given the Hugging Face server requires the token "secret"   (401 without, 403 with another)
//	Given the Hugging Face server sends at most 500000 bytes per second
//
// Revisions: every repo starts at commit 0000…0 (every revision names it).
//
//	Given the Hugging Face repo "org/repo" moves to a new commit whose "f.gguf" is the tiny model of seed 2
//	Given the Hugging Face server replaces "org/repo" file "f.gguf" with the tiny model of seed 3
//
// The first makes a new commit (${HF_COMMIT}) that branches now name; the
// old commit still serves the old bytes by its id. The second changes the
// bytes under the current commit (a force-push).
//
// Assertions:
//
//	Then the Hugging Face server got a GET of revision "${HF_COMMIT}"
//	Then the Hugging Face server got a GET with a Range header
//	Then the Hugging Face server got no GET with a Range header
//	Then the Hugging Face server got 2 GETs of the file bytes
//	Then the Hugging Face server got no GET of the file bytes
//	Then the Hugging Face server got a header read from rbee plan   (since the last such look)
//	Then the Hugging Face server got no header read from rbee plan

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cucumber/godog"
	"github.com/rbee-dev/rbee/gguf"
)

func init() { stepSets = append(stepSets, registerHFSteps) }

// hfServer is a fake Hugging Face hub with fault injection.
type hfServer struct {
	srv *httptest.Server

	mu       sync.Mutex
	files    map[string][]byte // "org/repo/file" → content
	bySHA    map[string][]byte // sha256 → content
	status   int               // answer everything with this status when set
	token    string            // required bearer token, if set
	cutAfter int64             // cut the next GET after this many bytes (once)
	stallAt  int64             // stall the next GET after this many bytes (once)
	corrupt  string            // "", "once", "always"
	rate     int64             // bytes per second cap, 0 = unlimited
	gets     int               // GETs of file bytes
	ranges   []string          // Range header of each GET of file bytes
	commits  map[string]string // repo → current commit, once it moved (else zeroCommit)
	old      map[string][]byte // "org/repo@commit/file" → content of a past commit
	revs     []string          // revision of each GET of a resolve URL
	reads    int               // rbee plan's Range requests for a header, since the last look
}

// zeroCommit is the commit of a repo that never moved.
const zeroCommit = "0000000000000000000000000000000000000000"

// commitOf is repo's current commit; h.mu is held.
func (h *hfServer) commitOf(repo string) string {
	if c, ok := h.commits[repo]; ok {
		return c
	}
	return zeroCommit
}

// move makes a new commit of repo in which file has content; the files of
// the old commit stay reachable by its id. It returns the new commit.
func (h *hfServer) move(repo, file string, content []byte) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.commits == nil {
		h.commits, h.old = map[string]string{}, map[string][]byte{}
	}
	prev := h.commitOf(repo)
	for k, b := range h.files {
		if f, ok := strings.CutPrefix(k, repo+"/"); ok {
			h.old[repo+"@"+prev+"/"+f] = b
		}
	}
	sum := sha256.Sum256([]byte(prev + file + strconv.Itoa(len(h.old))))
	next := hex.EncodeToString(sum[:20])
	h.commits[repo] = next
	h.files[repo+"/"+file] = content
	s := sha256.Sum256(content)
	h.bySHA[hex.EncodeToString(s[:])] = content
	return next
}

func newHFServer() *hfServer {
	h := &hfServer{files: map[string][]byte{}, bySHA: map[string][]byte{}, cutAfter: -1, stallAt: -1}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	return h
}

func (h *hfServer) add(repo, file string, content []byte) string {
	sum := sha256.Sum256(content)
	sha := hex.EncodeToString(sum[:])
	h.mu.Lock()
	h.files[repo+"/"+file] = content
	h.bySHA[sha] = content
	h.mu.Unlock()
	return sha
}

func (h *hfServer) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	status, token := h.status, h.token
	h.mu.Unlock()
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	if token != "" && !strings.HasPrefix(r.URL.Path, "/cdn/") {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		switch {
		case !ok:
			w.Header().Set("X-Error-Code", "GatedRepo")
			http.Error(w, "Access to this model is restricted. You must be authenticated.", http.StatusUnauthorized)
			return
		case got != token:
			http.Error(w, "Access to this model is restricted.", http.StatusForbidden)
			return
		}
	}
	if sha, ok := strings.CutPrefix(r.URL.Path, "/cdn/"); ok {
		h.serveBytes(w, r, sha)
		return
	}
	// /{org}/{repo}/resolve/{revision}/{file...}
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 5)
	if len(parts) < 5 || parts[2] != "resolve" {
		w.Header().Set("X-Error-Code", "RepoNotFound")
		http.Error(w, "Repository not found", http.StatusNotFound)
		return
	}
	repo, rev, file := parts[0]+"/"+parts[1], parts[3], parts[4]
	h.mu.Lock()
	commit := h.commitOf(repo)
	content, ok := h.files[repo+"/"+file]
	if b, past := h.old[repo+"@"+rev+"/"+file]; past && rev != commit {
		commit, content, ok = rev, b, true
	}
	if r.Method == http.MethodGet {
		h.revs = append(h.revs, rev)
	}
	h.mu.Unlock()
	if !ok {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		http.Error(w, "Entry not found", http.StatusNotFound)
		return
	}
	sum := sha256.Sum256(content)
	sha := hex.EncodeToString(sum[:])
	w.Header().Set("X-Linked-Etag", `"`+sha+`"`)
	w.Header().Set("X-Linked-Size", strconv.Itoa(len(content)))
	w.Header().Set("ETag", `"`+sha+`"`)
	w.Header().Set("X-Repo-Commit", commit)
	http.Redirect(w, r, "/cdn/"+sha, http.StatusFound)
}

func (h *hfServer) serveBytes(w http.ResponseWriter, r *http.Request, sha string) {
	h.mu.Lock()
	content, ok := h.bySHA[sha]
	h.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		w.Header().Set("Accept-Ranges", "bytes")
		return
	}
	if r.Header.Get("User-Agent") == "rbee-plan" {
		// rbee plan reads a model's header (a Range request) to know its
		// size before anything is downloaded: not a download, so it neither
		// counts as one nor takes the faults meant for the hive's.
		h.mu.Lock()
		h.reads++
		h.mu.Unlock()
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(content))
		return
	}
	h.mu.Lock()
	h.gets++
	h.ranges = append(h.ranges, r.Header.Get("Range"))
	cut, stall, corrupt, rate := h.cutAfter, h.stallAt, h.corrupt, h.rate
	h.cutAfter, h.stallAt = -1, -1
	if corrupt == "once" {
		h.corrupt = ""
	}
	h.mu.Unlock()

	body := content
	if corrupt != "" {
		body = bytes.Clone(content)
		body[len(body)/2] ^= 0xff
	}
	start := int64(0)
	if rg := r.Header.Get("Range"); rg != "" {
		v, ok := strings.CutPrefix(rg, "bytes=")
		n, err := strconv.ParseInt(strings.TrimSuffix(v, "-"), 10, 64)
		if !ok || err != nil || n < 0 || n >= int64(len(body)) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(body)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		start = n
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(body)-1, len(body)))
		w.Header().Set("Content-Length", strconv.FormatInt(int64(len(body))-start, 10))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
	}
	rest := body[start:]
	flusher := w.(http.Flusher)
	write := func(b []byte) {
		for len(b) > 0 {
			n := min(len(b), 64<<10)
			if rate > 0 {
				n = min(n, int(rate/10)+1)
			}
			if _, err := w.Write(b[:n]); err != nil {
				return
			}
			flusher.Flush()
			b = b[n:]
			if rate > 0 {
				time.Sleep(time.Duration(float64(n) / float64(rate) * float64(time.Second)))
			}
		}
	}
	switch {
	case cut >= 0 && cut < int64(len(rest)):
		write(rest[:cut])
		panic(http.ErrAbortHandler) // drops the connection mid-body
	case stall >= 0 && stall < int64(len(rest)):
		write(rest[:stall])
		<-r.Context().Done() // no more bytes until the client gives up
		return
	}
	write(rest)
}

func registerHFSteps(sc *godog.ScenarioContext, w *world) {
	var hf *hfServer
	ensure := func() *hfServer {
		if hf == nil {
			hf = newHFServer()
			srv := hf
			w.onCleanup(srv.srv.Close)
			w.vars["HF_ENDPOINT"] = hf.srv.URL
			w.env = append(w.env, "HF_ENDPOINT="+hf.srv.URL)
		}
		return hf
	}
	serve := func(repo, file string, content []byte) {
		sha := ensure().add(repo, file, content)
		w.vars["HF_SHA256"] = sha
		w.vars["HF_SIZE"] = strconv.Itoa(len(content))
	}
	sc.Step(`^a Hugging Face server serving "([^"]*)" file "([^"]*)"$`, func(repo, file string) error {
		var b bytes.Buffer
		if _, err := gguf.Synth(context.Background(), &b, "tiny", 1); err != nil {
			return err
		}
		serve(repo, file, b.Bytes())
		return nil
	})
	sc.Step(`^a Hugging Face server serving "([^"]*)" file "([^"]*)" from "([^"]*)"$`, func(repo, file, path string) error {
		b, err := os.ReadFile(filepath.Join(w.dir, w.expand(path)))
		if err != nil {
			return err
		}
		serve(repo, file, b)
		return nil
	})
	tinyOfSeed := func(seed int64) ([]byte, error) {
		var b bytes.Buffer
		_, err := gguf.Synth(context.Background(), &b, "tiny", seed)
		return b.Bytes(), err
	}
	sc.Step(`^the Hugging Face repo "([^"]*)" moves to a new commit whose "([^"]*)" is the tiny model of seed (\d+)$`, func(repo, file string, seed int64) error {
		b, err := tinyOfSeed(seed)
		if err != nil {
			return err
		}
		w.vars["HF_COMMIT"] = ensure().move(repo, file, b)
		w.vars["HF_SHA256"] = fmt.Sprintf("%x", sha256.Sum256(b))
		return nil
	})
	sc.Step(`^the Hugging Face server replaces "([^"]*)" file "([^"]*)" with the tiny model of seed (\d+)$`, func(repo, file string, seed int64) error {
		b, err := tinyOfSeed(seed)
		if err != nil {
			return err
		}
		serve(repo, file, b)
		return nil
	})
	sc.Step(`^the Hugging Face server got a GET of revision "([^"]*)"$`, func(rev string) error {
		rev = w.expand(rev)
		s := ensure()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, r := range s.revs {
			if r == rev {
				return nil
			}
		}
		return fmt.Errorf("no GET of revision %s; the GETs asked for %q", rev, s.revs)
	})
	sc.Step(`^the Hugging Face server cuts the connection once after (\d+) bytes$`, func(n int64) error {
		s := ensure()
		s.mu.Lock()
		s.cutAfter = n
		s.mu.Unlock()
		return nil
	})
	sc.Step(`^the Hugging Face server stalls once after (\d+) bytes$`, func(n int64) error {
		s := ensure()
		s.mu.Lock()
		s.stallAt = n
		s.mu.Unlock()
		return nil
	})
	sc.Step(`^the Hugging Face server serves corrupt bytes (once|always)$`, func(mode string) error {
		s := ensure()
		s.mu.Lock()
		s.corrupt = mode
		s.mu.Unlock()
		return nil
	})
	sc.Step(`^the Hugging Face server answers (\d{3}) to every request$`, func(status int) error {
		s := ensure()
		s.mu.Lock()
		s.status = status
		s.mu.Unlock()
		return nil
	})
	sc.Step(`^the Hugging Face server requires the token "([^"]*)"$`, func(tok string) error {
		s := ensure()
		s.mu.Lock()
		s.token = tok
		s.mu.Unlock()
		return nil
	})
	sc.Step(`^the Hugging Face server sends at most (\d+) bytes per second$`, func(rate int64) error {
		s := ensure()
		s.mu.Lock()
		s.rate = rate
		s.mu.Unlock()
		return nil
	})
	sc.Step(`^the Hugging Face server got (a|no) GET with a Range header$`, func(which string) error {
		s := ensure()
		s.mu.Lock()
		defer s.mu.Unlock()
		has := false
		for _, r := range s.ranges {
			has = has || r != ""
		}
		if has != (which == "a") {
			return fmt.Errorf("Range headers of the GETs: %q", s.ranges)
		}
		return nil
	})
	sc.Step(`^the Hugging Face server got (a|no) header read from rbee plan$`, func(which string) error {
		s := ensure()
		s.mu.Lock()
		defer s.mu.Unlock()
		n := s.reads
		s.reads = 0
		if (n > 0) != (which == "a") {
			return fmt.Errorf("rbee plan made %d Range requests for a header since the last look, want %s", n, which)
		}
		return nil
	})
	sc.Step(`^the Hugging Face server got (\d+|no) GETs? of the file bytes$`, func(n string) error {
		want := 0
		if n != "no" {
			want, _ = strconv.Atoi(n)
		}
		s := ensure()
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.gets != want {
			return fmt.Errorf("%d GETs of the file bytes (ranges %q), want %d", s.gets, s.ranges, want)
		}
		return nil
	})
}

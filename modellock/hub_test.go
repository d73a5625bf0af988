package modellock

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// hub is a real HTTP server that speaks the Hugging Face resolve protocol
// with branches that move: HEAD|GET /{org}/{repo}/resolve/{rev}/{file}
// answers 302 to /cdn/{sha256} with X-Repo-Commit, and for LFS files
// X-Linked-Etag and X-Linked-Size; /api/models/{org}/{repo}/revision/{rev}
// answers {"sha": commit}.
type hub struct {
	srv *httptest.Server

	mu       sync.Mutex
	commits  map[string]map[string][]byte // commit → file → bytes
	branches map[string]string            // "org/repo@branch" → commit
	plain    map[string]bool              // files served without a linked etag (git, not LFS)
	noCommit bool                         // leave X-Repo-Commit out
	heads    int                          // HEAD requests to resolve URLs
	gets     int                          // GETs of file bytes
	n        int
}

func newHub(t *testing.T) *hub {
	h := &hub{commits: map[string]map[string][]byte{}, branches: map[string]string{}, plain: map[string]bool{}}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

// push makes a new commit on repo@branch with files (the others carried
// over) and returns its id.
func (h *hub) push(repo, branch string, files map[string]string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	sum := sha256.Sum256([]byte(fmt.Sprint(repo, branch, h.n)))
	id := hex.EncodeToString(sum[:20])
	next := map[string][]byte{}
	for f, b := range h.commits[h.branches[repo+"@"+branch]] {
		next[f] = b
	}
	for f, b := range files {
		next[repo+"/"+f] = []byte(b)
	}
	h.commits[id], h.branches[repo+"@"+branch] = next, id
	return id
}

func (h *hub) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := strings.TrimPrefix(r.URL.Path, "/")
	if rest, ok := strings.CutPrefix(p, "api/models/"); ok {
		parts := strings.SplitN(rest, "/", 4)
		if len(parts) == 4 && parts[2] == "revision" {
			if c, ok := h.branches[parts[0]+"/"+parts[1]+"@"+parts[3]]; ok {
				json.NewEncoder(w).Encode(map[string]string{"sha": c})
				return
			}
		}
		http.NotFound(w, r)
		return
	}
	if sha, ok := strings.CutPrefix(p, "cdn/"); ok {
		for _, files := range h.commits {
			for _, b := range files {
				if s := sum(b); s == sha {
					w.Header().Set("Content-Length", strconv.Itoa(len(b)))
					if r.Method == http.MethodGet {
						h.gets++
						w.Write(b)
					}
					return
				}
			}
		}
		http.NotFound(w, r)
		return
	}
	parts := strings.SplitN(p, "/", 5)
	if len(parts) < 5 || parts[2] != "resolve" {
		http.NotFound(w, r)
		return
	}
	repo, rev, file := parts[0]+"/"+parts[1], parts[3], parts[4]
	commit := rev
	if c, ok := h.branches[repo+"@"+rev]; ok {
		commit = c
	}
	b, ok := h.commits[commit][repo+"/"+file]
	if !ok {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		http.Error(w, "Entry not found", http.StatusNotFound)
		return
	}
	if r.Method == http.MethodHead {
		h.heads++
	}
	if !h.noCommit {
		w.Header().Set("X-Repo-Commit", commit)
	}
	if !h.plain[file] {
		w.Header().Set("X-Linked-Etag", `"`+sum(b)+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(b)))
	}
	http.Redirect(w, r, "/cdn/"+sum(b), http.StatusFound)
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

package gateway

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/rbee-dev/rbee/api"
)

// Keys are the API keys clients may send as "Authorization: Bearer KEY".
// Only their SHA-256 digests are kept, so that every comparison takes the
// same time whatever the key's length, and no key can end up in a log.
type Keys struct {
	digests [][sha256.Size]byte
	file    string
}

// LoadKeys reads an API keys file: one key per line; blank lines and lines
// starting with # are ignored. The file must be private (mode 0600).
func LoadKeys(path string) (*Keys, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("API keys file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("API keys file %s has mode %04o; it must be private: run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("API keys file: %w", err)
	}
	defer f.Close()
	k := &Keys{file: path}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k.digests = append(k.digests, sha256.Sum256([]byte(line)))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("API keys file %s: %w", path, err)
	}
	if len(k.digests) == 0 {
		return nil, fmt.Errorf("API keys file %s holds no key; put one key per line (e.g. openssl rand -hex 32 >> %s)", path, path)
	}
	return k, nil
}

// Len is how many keys there are.
func (k *Keys) Len() int { return len(k.digests) }

// Valid reports whether key is one of the keys, comparing against all of
// them in constant time.
func (k *Keys) Valid(key string) bool {
	d := sha256.Sum256([]byte(key))
	ok := 0
	for _, want := range k.digests {
		ok |= subtle.ConstantTimeCompare(d[:], want[:])
	}
	return ok == 1
}

// CheckListen refuses a listen address off loopback without API keys.
func CheckListen(addr string, keys *Keys) error {
	if keys == nil && !api.IsLoopback(addr) {
		return fmt.Errorf("refusing to serve the gateway on %s without API keys: set api_keys_file in the gateway block (or pass --api-keys-file) with a 0600 file of one key per line, or listen on 127.0.0.1", addr)
	}
	return nil
}

// requireKey wraps h so that every request but GET /health must carry a
// valid key; nil keys let every request through.
func requireKey(keys *Keys, h http.Handler) http.Handler {
	if keys == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			h.ServeHTTP(w, r)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !keys.Valid(strings.TrimSpace(got)) {
			writeError(w, http.StatusUnauthorized, CodeUnauthorized, "missing or wrong API key: send Authorization: Bearer KEY with a key from the gateway's api_keys_file", nil)
			return
		}
		h.ServeHTTP(w, r)
	})
}

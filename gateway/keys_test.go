package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadKeys(t *testing.T) {
	cases := []struct {
		name, body string
		mode       os.FileMode
		keys       int
		err        string
	}{
		{"one key", "k1\n", 0o600, 1, ""},
		{"comments and blanks", "# clients\n\nk1\n  k2  \n", 0o600, 2, ""},
		{"readable by others", "k1\n", 0o644, 0, "chmod 600"},
		{"no key", "# none yet\n\n", 0o600, 0, "holds no key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "api-keys")
			if err := os.WriteFile(p, []byte(c.body), c.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, c.mode); err != nil {
				t.Fatal(err)
			}
			k, err := LoadKeys(p)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, want an error with %q", err, c.err)
				}
				return
			}
			if err != nil || k.Len() != c.keys {
				t.Fatalf("got %v keys, err %v; want %d", k, err, c.keys)
			}
		})
	}
	if _, err := LoadKeys(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("a missing keys file loaded")
	}
}

func TestKeysValid(t *testing.T) {
	p := filepath.Join(t.TempDir(), "api-keys")
	if err := os.WriteFile(p, []byte("alpha\nbravo-longer-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := LoadKeys(p)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{"alpha": true, "bravo-longer-key": true, "alph": false, "alphaa": false, "": false, "charlie": false} {
		if got := k.Valid(key); got != want {
			t.Errorf("Valid(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestCheckListen(t *testing.T) {
	k := &Keys{digests: make([][32]byte, 1)}
	cases := []struct {
		addr string
		keys *Keys
		ok   bool
	}{
		{"127.0.0.1:8080", nil, true},
		{"localhost:8080", nil, true},
		{"[::1]:8080", nil, true},
		{"0.0.0.0:8080", nil, false},
		{"10.0.0.5:8080", nil, false},
		{"0.0.0.0:8080", k, true},
	}
	for _, c := range cases {
		if err := CheckListen(c.addr, c.keys); (err == nil) != c.ok {
			t.Errorf("CheckListen(%s, keys %v) = %v", c.addr, c.keys != nil, err)
		}
	}
}

func TestRequireKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "api-keys")
	if err := os.WriteFile(p, []byte("sekret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := LoadKeys(p)
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := requireKey(k, ok)
	cases := []struct {
		path, auth string
		want       int
	}{
		{"/v1/models", "", http.StatusUnauthorized},
		{"/v1/models", "Bearer wrong", http.StatusUnauthorized},
		{"/v1/models", "sekret", http.StatusUnauthorized},
		{"/v1/models", "Bearer sekret", http.StatusTeapot},
		{"/health", "", http.StatusTeapot},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, c.path, nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("%s with %q: %d, want %d", c.path, c.auth, rec.Code, c.want)
			continue
		}
		if rec.Code == http.StatusUnauthorized {
			var body struct {
				Error apiError `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error.Code != CodeUnauthorized || body.Error.Type != "authentication_error" || strings.Contains(rec.Body.String(), "sekret") {
				t.Errorf("401 body is not OpenAI's error shape without the key: %s", rec.Body.String())
			}
			if rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		}
	}
}

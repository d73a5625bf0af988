// Package api holds what every rbee HTTP API shares: the error envelope
// {"error":{"code","message","details"}}, bearer-token authentication, token
// files, and the rule that a non-loopback listener needs a token.
package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
)

// MaxBodyBytes is the largest request body any rbee API accepts (413 beyond).
const MaxBodyBytes = 1 << 20

// Error is the body of every non-2xx answer, and a Go error on the client side.
type Error struct {
	Status  int            `json:"-"`
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// FromServer reports whether err carries an *Error, that is whether the
// other side answered (as opposed to a connection that failed).
func FromServer(err error) bool {
	var ae *Error
	return errors.As(err, &ae)
}

// HasStatus reports whether err carries an *Error with the HTTP status.
func HasStatus(err error, status int) bool {
	var ae *Error
	return errors.As(err, &ae) && ae.Status == status
}

// HasCode reports whether err carries an *Error with the code.
func HasCode(err error, code string) bool {
	var ae *Error
	return errors.As(err, &ae) && ae.Code == code
}

// Errorf builds an *Error with a formatted message.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithDetails returns e with details added.
func (e *Error) WithDetails(kv map[string]any) *Error {
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	for k, v := range kv {
		e.Details[k] = v
	}
	return e
}

// WriteError writes err as the error envelope. Errors that are not *Error
// become 500 INTERNAL.
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Code: "INTERNAL", Message: err.Error()}
	}
	status := e.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rbee"`)
	}
	WriteJSON(w, status, map[string]*Error{"error": e})
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// DecodeJSON reads a JSON body of at most MaxBodyBytes into v, rejecting
// unknown fields. It returns a 413 or 400 *Error on bad input.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return Errorf(http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE", "request body is larger than %d bytes", MaxBodyBytes)
		}
		if errors.Is(err, io.EOF) {
			return Errorf(http.StatusBadRequest, "INVALID_JSON", "request body is empty; send a JSON object")
		}
		return Errorf(http.StatusBadRequest, "INVALID_JSON", "request body is not valid JSON for this endpoint: %v", err)
	}
	if dec.More() {
		return Errorf(http.StatusBadRequest, "INVALID_JSON", "request body has trailing data after the JSON object")
	}
	return nil
}

// ReadError turns a non-2xx response into an *Error, falling back to the raw
// body when it is not the envelope.
func ReadError(resp *http.Response) *Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes))
	var env struct {
		Error *Error `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil && env.Error != nil {
		env.Error.Status = resp.StatusCode
		return env.Error
	}
	return &Error{Status: resp.StatusCode, Code: http.StatusText(resp.StatusCode), Message: strings.TrimSpace(string(body))}
}

// IsLoopback reports whether a listen address (host:port) binds only loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ReadTokenFile reads a bearer token from path. The file must not be readable
// by group or others (mode 0600 or stricter).
func ReadTokenFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("token file %s has mode %04o; it must be private: run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty; put a random token in it (e.g. openssl rand -hex 32 > %s)", path, path)
	}
	return tok, nil
}

// CheckListen refuses a non-loopback listen address without a token.
func CheckListen(addr, token string) error {
	if token == "" && !IsLoopback(addr) {
		return fmt.Errorf("refusing to listen on %s without a token: bind a loopback address (127.0.0.1) or pass --token-file with a 0600 file", addr)
	}
	return nil
}

// Fingerprint is a short, non-reversible name for a token, safe to log.
func Fingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:4])
}

// RequireBearer wraps h so that every request must carry "Authorization:
// Bearer <token>". An empty token disables the check (loopback binds).
// Requests matching a ServeMux pattern in open ("/health",
// "POST /v1/workers/{id}/ready") are served without a token.
func RequireBearer(token string, h http.Handler, open ...string) http.Handler {
	if token == "" {
		return h
	}
	want := []byte(token)
	public := http.NewServeMux()
	for _, p := range open {
		public.Handle(p, h)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := public.Handler(r); pattern != "" {
			h.ServeHTTP(w, r)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			WriteError(w, Errorf(http.StatusUnauthorized, "UNAUTHORIZED", "missing or wrong bearer token: send Authorization: Bearer <token>"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// NewRequest builds a request to an rbee API: body (if not nil) is sent as
// JSON, and token (if not empty) as the bearer token.
func NewRequest(ctx context.Context, method, url, token string, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, nil
}

// ReadSSE calls fn with the payload of every "data:" line of a server-sent
// event stream until "data: [DONE]" or the end of r.
func ReadSSE(r io.Reader, fn func(data []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		data, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue
		}
		data = bytes.TrimSpace(data)
		if string(data) == "[DONE]" {
			return nil
		}
		if err := fn(data); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.ErrUnexpectedEOF
}

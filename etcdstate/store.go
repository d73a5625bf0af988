// Package etcdstate keeps rbee's state in etcd, so that a team shares one
// state and one lock from any machine: the same records, serial, lineage
// and backup as the Pebble store (package state), under a key prefix. The
// lock is a key bound to an etcd lease that the running command keeps
// alive, so a holder that dies frees it when the lease expires; every write
// is one transaction that also checks the lock is still held, and a
// snapshot is one read at one revision.
package etcdstate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/state"
)

// DefaultLeaseTTL is the lifetime of the lock's lease: a holder killed with
// -9 frees the lock this long after its last keep-alive.
const DefaultLeaseTTL = 5 * time.Second

// DefaultRequestTimeout bounds each request to etcd.
const DefaultRequestTimeout = 10 * time.Second

// Keys under the prefix.
const (
	keyFormat  = "meta/format"
	keyLineage = "meta/lineage"
	keySerial  = "meta/serial"
	keyUpdated = "meta/updated"
	// keyLastWrite is the ID of the last write: a write retried after a
	// failure that left its outcome unknown finds it there if it committed.
	keyLastWrite = "meta/last-write"
	keyLock      = "lock"
	keyBackup    = "backup"
	keyTokens    = "hive-tokens/"
)

// Options say where the state lives and how to reach it.
type Options struct {
	Backend config.StateBackend // endpoints, prefix, TLS and auth
	// Dir is the local folder the state's users may keep files in (local
	// nodes' default install_dir); nothing of the state is kept there.
	Dir            string
	LeaseTTL       time.Duration // default DefaultLeaseTTL
	RequestTimeout time.Duration // default DefaultRequestTimeout
	Logger         *slog.Logger  // nil discards
}

// Store is the state under one prefix of one etcd cluster. It implements
// operation.State and is safe for concurrent use.
type Store struct {
	cli  *clientv3.Client
	root string // prefix + "/"
	opts Options

	mu   sync.Mutex
	held *heldLock // the lock this Store holds, if any
	// backupDue is set by Lock: the first write that changes something
	// saves the state as it was under the backup key in the same transaction.
	backupDue atomic.Bool
}

// Open connects to the etcd cluster of opts.Backend. It checks nothing on
// the server (creating a client does not dial); the first request does.
func Open(ctx context.Context, opts Options) (*Store, error) {
	b := opts.Backend
	if len(b.Endpoints) == 0 {
		return nil, errors.New(`state "etcd" has no endpoints; set endpoints = ["https://etcd1:2379"]`)
	}
	for _, e := range b.Endpoints {
		if err := config.CheckEndpoint(e, b.Insecure); err != nil {
			return nil, fmt.Errorf(`state "etcd": %w`, err)
		}
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if b.Prefix == "" {
		b.Prefix = config.DefaultStatePrefix
	}
	cfg := clientv3.Config{Endpoints: b.Endpoints, DialTimeout: opts.RequestTimeout, Logger: zap.NewNop(),
		Username: b.Username, Context: context.WithoutCancel(ctx), DialKeepAliveTime: 2 * time.Second, DialKeepAliveTimeout: 2 * time.Second}
	if b.PasswordFile != "" {
		pw, err := os.ReadFile(b.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf(`state "etcd": reading password_file: %w`, err)
		}
		cfg.Password = strings.TrimRight(string(pw), "\r\n")
	}
	tc, err := tlsConfig(b)
	if err != nil {
		return nil, err
	}
	cfg.TLS = tc
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to etcd at %s: %w", strings.Join(b.Endpoints, ", "), err)
	}
	opts.Backend = b
	return &Store{cli: cli, root: strings.TrimSuffix(b.Prefix, "/") + "/", opts: opts}, nil
}

// tlsConfig is the client TLS of b: nil for plain http endpoints without
// certificates, else the CA bundle (or the system roots) and the client pair.
func tlsConfig(b config.StateBackend) (*tls.Config, error) {
	https := false
	for _, e := range b.Endpoints {
		https = https || strings.HasPrefix(e, "https://")
	}
	if !https && b.CAFile == "" && b.CertFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if b.CAFile != "" {
		pem, err := os.ReadFile(b.CAFile)
		if err != nil {
			return nil, fmt.Errorf(`state "etcd": reading ca_file: %w`, err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf(`state "etcd": ca_file %s holds no PEM certificate`, b.CAFile)
		}
	}
	if b.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(b.CertFile, b.KeyFile)
		if err != nil {
			return nil, fmt.Errorf(`state "etcd": cert_file and key_file: %w`, err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// Close releases the lock this Store holds (if any) and the connection.
func (s *Store) Close() error {
	s.mu.Lock()
	h := s.held
	s.held = nil
	s.mu.Unlock()
	if h != nil {
		_ = h.session.Close()
	}
	return s.cli.Close()
}

// Dir is the local folder given in Options.
func (s *Store) Dir() string { return s.opts.Dir }

// Where names the state for messages: the endpoints and the prefix.
func (s *Store) Where() string {
	return fmt.Sprintf("etcd %s (prefix %s)", strings.Join(s.opts.Backend.Endpoints, ", "), strings.TrimSuffix(s.root, "/"))
}

func (s *Store) key(k string) string { return s.root + k }

// request is a context bounded by the request timeout.
func (s *Store) request(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.RequestTimeout)
}

// wrap gives an etcd error the context a user needs: which cluster, and
// that nothing was half-written.
func (s *Store) wrap(ctx context.Context, what string, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return err
	}
	code := status.Code(err)
	switch {
	case errors.Is(err, rpctypes.ErrAuthFailed) || errors.Is(err, rpctypes.ErrPermissionDenied) || code == codes.Unauthenticated || code == codes.PermissionDenied:
		return fmt.Errorf("%s: %s refused the request (%v); check username and password_file of the state block, and the user's role on the prefix", what, s.Where(), err)
	case errors.Is(err, context.DeadlineExceeded) || code == codes.DeadlineExceeded || code == codes.Unavailable || errors.Is(err, rpctypes.ErrNoLeader):
		return fmt.Errorf("%s: %s did not answer within %s (%v): it is down or has lost quorum. Nothing was written; retry when the cluster is healthy", what, s.Where(), s.opts.RequestTimeout, err)
	}
	return fmt.Errorf("%s in %s: %w", what, s.Where(), err)
}

// transient reports whether err is the cluster being briefly unable to
// answer (a leader lost, an election): the request may be tried again.
func transient(err error) bool {
	for _, e := range []error{rpctypes.ErrTimeout, rpctypes.ErrTimeoutDueToLeaderFail, rpctypes.ErrTimeoutDueToConnectionLost,
		rpctypes.ErrNoLeader, rpctypes.ErrLeaderChanged, rpctypes.ErrNotCapable} {
		if errors.Is(err, e) || rpctypes.ErrorDesc(err) == rpctypes.ErrorDesc(e) {
			return true
		}
	}
	return status.Code(err) == codes.Unavailable
}

// retry runs try until it succeeds, fails for good, or transient failures
// have gone on for the request timeout; a mutation whose outcome a failure
// leaves unknown must be safe to try again (see write's last-write key).
func (s *Store) retry(ctx context.Context, try func(ctx context.Context) error) error {
	deadline := time.Now().Add(s.opts.RequestTimeout)
	for {
		rctx, cancel := s.request(ctx)
		err := try(rctx)
		cancel()
		if err == nil || !transient(err) || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		s.opts.Logger.Debug("etcd is briefly unavailable; retrying", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// meta is what a write needs to know about the state first.
type meta struct {
	lastWrite string // ID of the last write (keyLastWrite)
	fresh     bool   // no state yet: the write initialises it
	serial    uint64 // current serial
	serialRev int64  // ModRevision of the serial key, for compare-and-swap
	lineage   string
}

// readMeta parses the meta keys of a range response.
func (s *Store) readMeta(kvs map[string][]byte, rev map[string]int64) (meta, error) {
	var m meta
	f, ok := kvs[keyFormat]
	if !ok {
		m.fresh = true
		return m, nil
	}
	n, err := strconv.Atoi(string(f))
	switch {
	case err != nil || n < 1:
		return m, fmt.Errorf("%w: format marker %q in %s is unreadable", state.ErrCorrupt, f, s.Where())
	case n > state.FormatVersion:
		return m, fmt.Errorf("the state in %s has format %d, written by a newer rbee; this rbee reads format %d. Upgrade rbee", s.Where(), n, state.FormatVersion)
	}
	m.lineage = string(kvs[keyLineage])
	if m.lineage == "" {
		return m, fmt.Errorf("%w: the lineage in %s is missing", state.ErrCorrupt, s.Where())
	}
	if m.serial, err = strconv.ParseUint(string(kvs[keySerial]), 10, 64); err != nil {
		return m, fmt.Errorf("%w: serial %q in %s is unreadable", state.ErrCorrupt, kvs[keySerial], s.Where())
	}
	m.serialRev = rev[keySerial]
	m.lastWrite = string(kvs[keyLastWrite])
	return m, nil
}

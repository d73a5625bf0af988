package modelstore

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/gguf"
)

// wantCode fails unless err is an *api.Error with the code.
func wantCode(t *testing.T, err error, code string) *api.Error {
	t.Helper()
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != code {
		t.Fatalf("err = %v, want %s", err, code)
	}
	return ae
}

func openStore(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// tmpfs mounts a real filesystem of size bytes (needs root).
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs to fill a real disk needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

func TestAliasOfAnotherModelNeverDeletesIt(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), Options{})
	tiny, err := s.Provision(ctx, "tiny", hiveapi.ModelSpec{Source: "synth:tiny"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	src := "file://" + tiny.Path
	tests := []struct {
		name string
		spec hiveapi.ModelSpec
		code string // "" : provisioned, then deleted
	}{
		{"delete", hiveapi.ModelSpec{Source: src}, ""},
		{"wrong-pin", hiveapi.ModelSpec{Source: src, SHA256: strings.Repeat("0", 64)}, "CHECKSUM_MISMATCH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Provision(ctx, "alias", tt.spec, nil)
			if tt.code != "" {
				wantCode(t, err, tt.code)
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Delete("alias"); err != nil {
					t.Fatal(err)
				}
			}
			if _, ok := s.Get("tiny"); !ok {
				t.Fatalf("the alias %s removed tiny's file %s", tt.name, tiny.Path)
			}
		})
	}
}

func TestLocalModelSwappedForALinkIsGone(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.gguf")
	if _, err := gguf.SynthFile(context.Background(), p, "tiny", 1); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, t.TempDir(), Options{})
	if _, err := s.Provision(context.Background(), "m", hiveapi.ModelSpec{Source: "file://" + p}, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p, p+".real"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(p+".real", p); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Get("m"); ok {
		t.Error("a local model replaced by a symbolic link is still served")
	}
}

func TestLocalSourcesMustBeRegularFiles(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("root:x:0:0:hidden\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.gguf")
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.gguf")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(dir, "folder.gguf")
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain.gguf")
	if err := os.WriteFile(plain, []byte("root:x:0:0:hidden\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, code, says string
	}{
		{link, "NOT_A_REGULAR_FILE", "symbolic link"},
		{fifo, "NOT_A_REGULAR_FILE", "named pipe"},
		{folder, "NOT_A_REGULAR_FILE", "directory"},
		{plain, "INVALID_MODEL", "GGUF"},
		{filepath.Join(dir, "missing.gguf"), "MODEL_NOT_FOUND", "no such file"},
	}
	s := openStore(t, t.TempDir(), Options{})
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			_, err := s.Provision(context.Background(), "m", hiveapi.ModelSpec{Source: "file://" + tt.path}, nil)
			ae := wantCode(t, err, tt.code)
			if !strings.Contains(ae.Message, tt.says) {
				t.Errorf("message %q does not say %q", ae.Message, tt.says)
			}
			if strings.Contains(ae.Message, "root") || strings.Contains(ae.Message, "hidden") {
				t.Errorf("message echoes the file's content: %q", ae.Message)
			}
		})
	}
	if _, err := os.Stat(secret); err != nil {
		t.Errorf("the link's target is gone: %v", err)
	}
}

func TestFileRoots(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	for _, d := range []string{root, outside} {
		if _, err := gguf.SynthFile(context.Background(), filepath.Join(d, "m.gguf"), "tiny", 1); err != nil {
			t.Fatal(err)
		}
	}
	// A folder inside the root that leads outside it.
	if err := os.Symlink(outside, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, code string
	}{
		{filepath.Join(root, "m.gguf"), ""},
		{filepath.Join(outside, "m.gguf"), "FILE_OUTSIDE_ROOTS"},
		{filepath.Join(root, "escape", "m.gguf"), "FILE_OUTSIDE_ROOTS"},
	}
	s := openStore(t, t.TempDir(), Options{FileRoots: []string{root}})
	for i, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			_, err := s.Provision(context.Background(), "m"+string(rune('a'+i)), hiveapi.ModelSpec{Source: "file://" + tt.path}, nil)
			if tt.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			ae := wantCode(t, err, tt.code)
			if ae.Status != http.StatusForbidden || !strings.Contains(ae.Message, "file_roots") {
				t.Errorf("refusal %d %q does not name file_roots", ae.Status, ae.Message)
			}
		})
	}
}

// stuckTransport never answers and ignores cancellation: a fake for a
// provisioning step stuck in the kernel, which cannot be produced on demand.
type stuckTransport struct{ entered chan struct{} }

func (s stuckTransport) RoundTrip(*http.Request) (*http.Response, error) {
	close(s.entered)
	select {}
}

func TestCloseIsBoundedWhateverProvisioningDoes(t *testing.T) {
	st := stuckTransport{entered: make(chan struct{})}
	s, err := Open(t.TempDir(), Options{Downloader: &Downloader{Client: &http.Client{Transport: st}}, CloseWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_, _ = s.Provision(context.Background(), "m", hiveapi.ModelSpec{Source: "https://example.invalid/m.gguf"}, nil)
	}()
	<-st.entered
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(time.Minute):
		t.Fatal("Close is still waiting for a stuck provisioning step")
	}
}

func TestFullDiskIsInsufficientDisk(t *testing.T) {
	fs := &faultServer{blob: make([]byte, 3<<20)}
	srv := httptest.NewServer(fs.handler(t))
	defer srv.Close()
	lie := func(string) (int64, error) { return 1 << 40, nil } // let the write itself hit the full disk
	tests := []struct {
		name    string
		free    func(string) (int64, error)
		spec    hiveapi.ModelSpec
		partial bool // a resumable partial file stays
	}{
		{"synth refused before writing", nil, hiveapi.ModelSpec{Source: "synth:tinyllama-q4_0"}, false},
		{"synth fills the disk", lie, hiveapi.ModelSpec{Source: "synth:tinyllama-q4_0"}, false},
		{"download fills the disk", lie, hiveapi.ModelSpec{Source: srv.URL + "/r", File: "big.gguf"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tmpfs(t, "1m")
			dl := testDownloader()
			dl.DiskFree = tt.free
			s := openStore(t, data, Options{Downloader: dl})
			_, err := s.Provision(context.Background(), "m", tt.spec, nil)
			ae := wantCode(t, err, "INSUFFICIENT_DISK")
			if ae.Status != http.StatusInsufficientStorage || ae.Details["free_bytes"] == nil || !strings.Contains(ae.Message, "free") {
				t.Errorf("507 without the numbers: %d %q %v", ae.Status, ae.Message, ae.Details)
			}
			left, _ := filepath.Glob(filepath.Join(s.Dir(), "*", "*"))
			folders, _ := filepath.Glob(filepath.Join(s.Dir(), "*"))
			switch {
			case tt.partial && (len(left) != 1 || !strings.HasSuffix(left[0], PartialSuffix)):
				t.Errorf("left behind %v, want only the resumable partial file", left)
			case !tt.partial && len(folders) != 0:
				t.Errorf("left behind %v, want nothing", folders)
			}
		})
	}
}

func TestDownloadStats(t *testing.T) {
	blob := []byte(strings.Repeat("rbee model bytes ", 20000))
	tests := []struct {
		name                     string
		status                   int
		fault                    func(n int) string
		bytes, failures, resumes int64
	}{
		{name: "clean", bytes: int64(len(blob))},
		{name: "cut once and resumed", fault: func(n int) string { return map[int]string{1: "cut"}[n] }, bytes: int64(len(blob)), resumes: 1},
		{name: "404", status: 404, failures: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer((&faultServer{blob: blob, status: tt.status, fault: tt.fault}).handler(t))
			defer srv.Close()
			d := testDownloader()
			_, _ = d.Get(context.Background(), Fetch{URL: srv.URL + "/r", Dest: filepath.Join(t.TempDir(), "x.gguf"), Describe: "x"})
			if got := [3]int64{d.Stats.Bytes.Load(), d.Stats.Failures.Load(), d.Stats.Resumes.Load()}; got != [3]int64{tt.bytes, tt.failures, tt.resumes} {
				t.Errorf("bytes, failures, resumes = %v, want %v", got, [3]int64{tt.bytes, tt.failures, tt.resumes})
			}
		})
	}
}

// A catalog that cannot be written (here: a folder stands where the file
// goes) leaves neither an entry nor the model's file behind.
func TestCatalogWriteFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	if err := os.MkdirAll(filepath.Join(dir, catalogFile, "blocker"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Provision(context.Background(), "tiny", hiveapi.ModelSpec{Source: "synth:tiny"}, nil); err == nil || !strings.Contains(err.Error(), "catalog") {
		t.Fatalf("Provision = %v, want a catalog error", err)
	}
	if got := s.List(); len(got) != 0 {
		t.Errorf("catalogued without a catalog: %+v", got)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "tiny")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the model's folder stayed: %v", err)
	}
}

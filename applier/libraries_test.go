package applier

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/applier/transport"
	"github.com/rbee-dev/rbee/digest"
	"github.com/rbee-dev/rbee/internal/testsshd"
)

// TestInstallCopiesTheLibraryFolder installs a binary with a library folder
// beside it: every library lands beside the installed binary with the same
// bytes, the install checksum covers them (a changed library is drift), and
// a second install with a changed folder leaves exactly the new set.
func TestInstallCopiesTheLibraryFolder(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	bin := filepath.Join(src, "rbee")
	copyTestFile(t, exe, bin, 0o755)
	libs := filepath.Join(src, "lib", "ollama")
	writeLibs(t, libs, map[string]string{"libggml-base.so.0": "base", "libggml-cpu-haswell.so": "v3", "libggml-cpu-icelake.so": "v4"})

	plain, err := digest.Cached(bin)
	if err != nil {
		t.Fatal(err)
	}
	n := Node{Name: "local", Local: true, InstallDir: filepath.Join(t.TempDir(), "node"), HivePort: freeLoopbackPort(t), Binary: bin}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t.Cleanup(func() { _ = UninstallHive(context.Background(), transport.NewLocal(), n) })

	got, err := InstallHive(ctx, transport.NewLocal(), n)
	if err != nil {
		t.Fatal(err)
	}
	if got.BinarySHA256 == plain || len(got.BinarySHA256) != 64 {
		t.Errorf("install checksum %s does not cover the libraries (binary alone: %s)", got.BinarySHA256, plain)
	}
	checkLibs(t, n.libDir(), map[string]string{"libggml-base.so.0": "base", "libggml-cpu-haswell.so": "v3", "libggml-cpu-icelake.so": "v4"})

	// One library changes, one goes, one comes.
	writeLibs(t, libs, map[string]string{"libggml-cpu-icelake.so": "v4 rebuilt", "libggml-cpu-skylakex.so": "v4 older"})
	if err := os.Remove(filepath.Join(libs, "libggml-cpu-haswell.so")); err != nil {
		t.Fatal(err)
	}
	want, err := HiveBinarySHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	if want == got.BinarySHA256 {
		t.Fatal("a changed library folder kept the install checksum: no drift would be seen")
	}
	again, err := InstallHive(ctx, transport.NewLocal(), n)
	if err != nil {
		t.Fatal(err)
	}
	if again.BinarySHA256 != want {
		t.Errorf("reinstall checksum %s, want %s", again.BinarySHA256, want)
	}
	checkLibs(t, n.libDir(), map[string]string{"libggml-base.so.0": "base", "libggml-cpu-icelake.so": "v4 rebuilt", "libggml-cpu-skylakex.so": "v4 older"})

	// With no folder the checksum is the binary's own and the node's folder empties.
	if err := os.RemoveAll(libs); err != nil {
		t.Fatal(err)
	}
	last, err := InstallHive(ctx, transport.NewLocal(), n)
	if err != nil {
		t.Fatal(err)
	}
	if last.BinarySHA256 != plain {
		t.Errorf("checksum without libraries %s, want the binary's %s", last.BinarySHA256, plain)
	}
	checkLibs(t, n.libDir(), map[string]string{})
}

// TestReinstallCopiesOnlyChangedLibraries installs twice over this machine
// and over a real OpenSSH server: a second install that changed only the
// binary leaves every library file on the node as it was (same inode: not
// copied again), and one that changed one library replaces that file only.
func TestReinstallCopiesOnlyChangedLibraries(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		node func(t *testing.T, dir string) (Node, transport.Transport)
	}{
		{"local", func(t *testing.T, dir string) (Node, transport.Transport) {
			return Node{Name: "local", Local: true, InstallDir: dir, HivePort: freeLoopbackPort(t)}, transport.NewLocal()
		}},
		{"ssh", sshNode},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := t.TempDir()
			bin := filepath.Join(src, "rbee")
			copyTestFile(t, exe, bin, 0o755)
			libs := map[string]string{"libggml-base.so.0": "base", "libggml-cpu-haswell.so": "v3", "libggml-cpu-icelake.so": "v4"}
			writeLibs(t, filepath.Join(src, "lib", "ollama"), libs)
			n, tr := c.node(t, filepath.Join(t.TempDir(), "node"))
			n.Binary = bin
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			t.Cleanup(func() { _ = UninstallHive(context.Background(), tr, n) })

			if _, err := InstallHive(ctx, tr, n); err != nil {
				t.Fatal(err)
			}
			before := inodes(t, n.libDir())
			// Only the binary changes: a byte appended still runs.
			appendByte(t, bin)
			if _, err := InstallHive(ctx, tr, n); err != nil {
				t.Fatal(err)
			}
			if got := inodes(t, n.libDir()); !maps.Equal(got, before) {
				t.Errorf("an install that changed only the binary copied libraries again: inodes %v, were %v", got, before)
			}
			checkLibs(t, n.libDir(), libs)

			libs["libggml-cpu-icelake.so"] = "v4 rebuilt"
			writeLibs(t, filepath.Join(src, "lib", "ollama"), libs)
			if _, err := InstallHive(ctx, tr, n); err != nil {
				t.Fatal(err)
			}
			after := inodes(t, n.libDir())
			for name, ino := range before {
				if changed := after[name] != ino; changed != (name == "libggml-cpu-icelake.so") {
					t.Errorf("%s copied again: %v; want only the changed library copied", name, changed)
				}
			}
			checkLibs(t, n.libDir(), libs)
		})
	}
}

// sshNode is a node behind a real OpenSSH server on 127.0.0.2 (skipped where
// none is installed), with its transport.
func sshNode(t *testing.T, dir string) (Node, transport.Transport) {
	if _, err := os.Stat(testsshd.Binary); err != nil {
		t.Skipf("no OpenSSH server at %s", testsshd.Binary)
	}
	keys, err := testsshd.NewKeys(filepath.Join(t.TempDir(), "ssh"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := keys.Start("n1", "127.0.0.2", filepath.Join(t.TempDir(), "sshd"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	port, err := testsshd.FreePort("127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	n := Node{Name: "n1", InstallDir: dir, HivePort: port, SSH: transport.SSHConfig{
		Host: srv.Addr, Port: srv.Port, User: keys.User, Identity: keys.ClientKey, KnownHosts: keys.KnownHosts}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr, err := Dial(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return n, tr
}

// inodes maps each file of dir to its inode number and modification time: an
// upload renames a new file into place, so a copied file gets a new pair (a
// freed inode number may be reused, the time as well is not).
func inodes(t *testing.T, dir string) map[string]string {
	t.Helper()
	names, err := digest.LibraryFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, name := range names {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		m[name] = fmt.Sprintf("%d@%d", fi.Sys().(*syscall.Stat_t).Ino, fi.ModTime().UnixNano())
	}
	return m
}

func appendByte(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeLibs(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func checkLibs(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	names, err := digest.LibraryFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var wantNames []string
	for name, body := range want {
		wantNames = append(wantNames, name)
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(b, []byte(body)) {
			t.Errorf("%s on the node: %q, %v; want %q", name, b, err, body)
		}
	}
	slices.Sort(wantNames)
	if !slices.Equal(names, wantNames) {
		t.Errorf("node's library folder holds %v, want %v", names, wantNames)
	}
}

func copyTestFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}

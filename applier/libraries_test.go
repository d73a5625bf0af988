package applier

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/applier/transport"
	"github.com/rbee-dev/rbee/digest"
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

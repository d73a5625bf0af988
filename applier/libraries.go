package applier

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/rbee-dev/rbee/applier/transport"
	"github.com/rbee-dev/rbee/digest"
	"github.com/rbee-dev/rbee/engine/cpu"
)

// libraryDir is the folder of ggml libraries that travels with a binary:
// lib/ollama beside it, where the worker loads them from.
func libraryDir(bin string) string { return filepath.Join(filepath.Dir(bin), cpu.LibraryFolder) }

func (n Node) libDir() string { return path.Join(path.Dir(n.binPath()), cpu.LibraryFolder) }

// nodeLibrariesScript removes from the node's library folder $1 every file
// not named in $2…, so that it holds what the local one holds, and prints
// "<sha256> <name>" for each regular file left, so that apply copies only
// the libraries that differ.
const nodeLibrariesScript = transport.SHA256Func + `dir=$1; shift
[ -d "$dir" ] || exit 0
for f in "$dir"/* "$dir"/.[!.]*; do
  [ -e "$f" ] || continue
  keep=
  for k in "$@"; do [ "${f##*/}" = "$k" ] && keep=1; done
  [ -n "$keep" ] || rm -rf -- "$f"
done
for f in "$dir"/*; do
  [ -f "$f" ] || continue
  printf '%s %s\n' "$(sha256 "$f")" "${f##*/}"
done`

// uploadLibraries makes the node's library folder hold what the one beside
// bin holds: it removes the node's libraries the local folder no longer has,
// then copies each file whose sha256 differs on the node (or that it lacks),
// sha256-verified and renamed into place like the binary. Libraries the node
// already has unchanged are not copied again.
func uploadLibraries(ctx context.Context, t transport.Transport, n Node, bin string) error {
	dir := libraryDir(bin)
	files, err := digest.LibraryFiles(dir)
	if err != nil {
		return fmt.Errorf("libraries of %s: %w", bin, err)
	}
	argv := append([]string{"sh", "-c", nodeLibrariesScript, "sh", n.libDir()}, files...)
	out, err := t.Run(ctx, argv, nil)
	if err != nil {
		return fmt.Errorf("list and prune the ggml libraries in %s on %s: %w", n.libDir(), n.where(), err)
	}
	have := parseSums(string(out))
	for _, f := range files {
		local := filepath.Join(dir, f)
		sum, err := digest.Cached(local)
		if err != nil {
			return fmt.Errorf("checksum of the ggml library %s: %w", local, err)
		}
		if have[f] == sum {
			continue
		}
		if err := t.Upload(ctx, local, path.Join(n.libDir(), f), 0o755); err != nil {
			return fmt.Errorf("copy the ggml library %s to %s: %w", f, n.where(), err)
		}
	}
	return nil
}

// parseSums reads nodeLibrariesScript's "<sha256> <name>" lines.
func parseSums(out string) map[string]string {
	sums := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		sum, name, ok := strings.Cut(strings.TrimSpace(line), " ")
		if ok && len(sum) == 64 {
			sums[name] = sum
		}
	}
	return sums
}

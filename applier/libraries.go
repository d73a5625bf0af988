package applier

import (
	"context"
	"fmt"
	"path"
	"path/filepath"

	"github.com/rbee-dev/rbee/applier/transport"
	"github.com/rbee-dev/rbee/digest"
	"github.com/rbee-dev/rbee/engine/cpu"
)

// libraryDir is the folder of ggml libraries that travels with a binary:
// lib/ollama beside it, where the worker loads them from.
func libraryDir(bin string) string { return filepath.Join(filepath.Dir(bin), cpu.LibraryFolder) }

func (n Node) libDir() string { return path.Join(path.Dir(n.binPath()), cpu.LibraryFolder) }

// pruneLibrariesScript removes from the node's library folder $1 every file
// not named in $2…, so that it holds what the local one holds.
const pruneLibrariesScript = `dir=$1; shift
[ -d "$dir" ] || exit 0
for f in "$dir"/* "$dir"/.[!.]*; do
  [ -e "$f" ] || continue
  keep=
  for k in "$@"; do [ "${f##*/}" = "$k" ] && keep=1; done
  [ -n "$keep" ] || rm -rf -- "$f"
done`

// uploadLibraries copies the library folder beside bin to the node, each
// file sha256-verified and renamed into place like the binary, and removes
// the node's libraries the local folder no longer has.
func uploadLibraries(ctx context.Context, t transport.Transport, n Node, bin string) error {
	dir := libraryDir(bin)
	files, err := digest.LibraryFiles(dir)
	if err != nil {
		return fmt.Errorf("libraries of %s: %w", bin, err)
	}
	for _, f := range files {
		if err := t.Upload(ctx, filepath.Join(dir, f), path.Join(n.libDir(), f), 0o755); err != nil {
			return fmt.Errorf("copy the ggml library %s to %s: %w", f, n.where(), err)
		}
	}
	argv := append([]string{"sh", "-c", pruneLibrariesScript, "sh", n.libDir()}, files...)
	if _, err := t.Run(ctx, argv, nil); err != nil {
		return fmt.Errorf("remove old ggml libraries from %s on %s: %w", n.libDir(), n.where(), err)
	}
	return nil
}

package applier

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/state"
)

// TokenDir is the folder inside the state folder that keeps each node's hive
// token (one 0600 file per node), so the CLI can talk to hives that need one.
const TokenDir = "hive-tokens"

// Tokens stores hive tokens beside the state, or in the state itself when
// it has a Keeper (etcd, shared by every machine).
type Tokens struct {
	Dir    string
	Keeper TokenKeeper // nil: files in Dir
}

// TokenKeeper keeps hive tokens in a state backend instead of files.
type TokenKeeper interface {
	HiveToken(node string) (string, error)
	PutHiveToken(node, token string) error
	RemoveHiveToken(node string) error
}

// NewTokens returns the token store of a state folder.
func NewTokens(stateDir string) Tokens { return Tokens{Dir: filepath.Join(stateDir, TokenDir)} }

// TokensOf returns the token store of a state: the state itself when it is
// a TokenKeeper (the etcd state), else the files in its folder.
func TokensOf(st interface{ Dir() string }) Tokens {
	t := NewTokens(st.Dir())
	t.Keeper, _ = st.(TokenKeeper)
	return t
}

// Get returns the token of node's hive, or "" when none is recorded.
func (t Tokens) Get(node string) (string, error) {
	if t.Keeper != nil {
		return t.Keeper.HiveToken(node)
	}
	p := filepath.Join(t.Dir, node)
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	return api.ReadTokenFile(p)
}

// Put records node's token with mode 0600.
func (t Tokens) Put(node, token string) error {
	if t.Keeper != nil {
		return t.Keeper.PutHiveToken(node, token)
	}
	if err := os.MkdirAll(t.Dir, 0o700); err != nil {
		return err
	}
	tmp := filepath.Join(t.Dir, "."+node+".tmp")
	if err := os.WriteFile(tmp, []byte(token+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(t.Dir, node))
}

// Remove forgets node's token.
func (t Tokens) Remove(node string) error {
	if t.Keeper != nil {
		return t.Keeper.RemoveHiveToken(node)
	}
	err := os.Remove(filepath.Join(t.Dir, node))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// Client returns a hive client for a node record.
func (t Tokens) Client(n *state.NodeRecord) (*hiveapi.Client, error) {
	tok, err := t.Get(n.Name)
	if err != nil {
		return nil, fmt.Errorf("hive token of node %s: %w", n.Name, err)
	}
	url := n.HiveURL
	if url == "" {
		url = nodeFromRecord(n).HiveURL()
	}
	return hiveapi.NewClient(url, tok), nil
}

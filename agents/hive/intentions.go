package hive

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/agents/hive/modelstore"
)

// intentionsFile holds the workers a hive is meant to run, in its data dir.
const intentionsFile = "workers.json"

// intention is one persisted worker: its id and configuration.
type intention struct {
	ID     string               `json:"id"`
	Config hiveapi.WorkerConfig `json:"config"`
}

func loadIntentions(dir string) ([]intention, error) {
	path := filepath.Join(dir, intentionsFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var f struct {
		Workers []intention `json:"workers"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s is corrupt (%v); move it away to start with no workers", path, err)
	}
	return f.Workers, nil
}

func saveIntentions(dir string, ws []intention) error {
	sort.Slice(ws, func(i, j int) bool { return ws[i].ID < ws[j].ID })
	b, err := json.MarshalIndent(struct {
		Workers []intention `json:"workers"`
	}{ws}, "", "  ")
	if err != nil {
		return err
	}
	return modelstore.WriteFileAtomic(filepath.Join(dir, intentionsFile), b, 0o644)
}

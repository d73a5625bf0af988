package state

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rbee-dev/rbee/secret"
)

const testSecret = "hf_TESTSECRETVALUE123"

func TestNodeRecordJSONHoldsNoValues(t *testing.T) {
	tests := []struct {
		name string
		rec  NodeRecord
	}{
		{"values only", NodeRecord{Name: "a", Env: map[string]string{"HF_TOKEN": testSecret}}},
		{"values and digests", NodeRecord{Name: "a", Env: map[string]string{"HF_TOKEN": testSecret}, EnvDigest: secret.Digests(map[string]string{"HF_TOKEN": testSecret})}},
		{"digests only", NodeRecord{Name: "a", EnvDigest: secret.Digests(map[string]string{"HF_TOKEN": testSecret})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range []any{tt.rec, &tt.rec} {
				b, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(b), testSecret) {
					t.Fatalf("%s holds the value", b)
				}
				var back NodeRecord
				if err := json.Unmarshal(b, &back); err != nil {
					t.Fatal(err)
				}
				if back.Env != nil || back.EnvDigest["HF_TOKEN"] != secret.Digest(testSecret) {
					t.Fatalf("read back env %v digests %v from %s", back.Env, back.EnvDigest, b)
				}
				if !strings.Contains(string(b), `"env":{"HF_TOKEN":"(sensitive)"}`) {
					t.Errorf("%s: want the key shown with (sensitive)", b)
				}
			}
		})
	}
}

// TestNodeRecordLegacyEnv reads a record written before env_digest: its
// values become digests and are gone from the next write.
func TestNodeRecordLegacyEnv(t *testing.T) {
	var r NodeRecord
	if err := json.Unmarshal([]byte(`{"name":"a","connection":"local","install_dir":"/x","hive_port":9200,"env":{"HF_TOKEN":"`+testSecret+`"}}`), &r); err != nil {
		t.Fatal(err)
	}
	if r.Env != nil || r.EnvDigest["HF_TOKEN"] != secret.Digest(testSecret) {
		t.Fatalf("env %v digests %v", r.Env, r.EnvDigest)
	}
	b, _ := json.Marshal(r)
	if strings.Contains(string(b), testSecret) {
		t.Fatalf("rewritten legacy record holds the value: %s", b)
	}
}

// TestStoreFilesHoldNoValues writes a desired node record (values and
// digests) to a Pebble store and searches every file of the folder.
func TestStoreFilesHoldNoValues(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	env := map[string]string{"HF_TOKEN": testSecret}
	if err := s.Put(ctx, NodeRecord{Name: "gpu1", Connection: "local", InstallDir: "/x", HivePort: 9200, Env: env, EnvDigest: secret.Digests(env)}); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Node("gpu1"); got == nil || got.Env != nil || got.EnvDigest["HF_TOKEN"] != secret.Digest(testSecret) {
		t.Fatalf("node read back: %+v", got)
	}
	files := 0
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), testSecret) {
			t.Errorf("%s holds the value", path)
		}
		return nil
	})
	if err != nil || files == 0 {
		t.Fatalf("walked %d files: %v", files, err)
	}
}

package state

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestModelHeaderCache(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), ".rbee")
	s := open(t, dir)
	// No state yet: nothing is read, nothing is kept, and no state is made.
	if err := s.PutModelHeader(ctx, "hf:a/b@c/f.gguf", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, DBDir)); !os.IsNotExist(err) {
		t.Fatalf("caching a header created the state: %v", err)
	}
	if err := s.Put(ctx, NodeRecord{Name: "n", Connection: "local", InstallDir: "/opt/rbee", HivePort: 9200}); err != nil {
		t.Fatal(err)
	}
	before, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		put, key, want string
	}{
		{"", "k1", ""},
		{`{"layers":2}`, "k1", `{"layers":2}`},
		{`{"layers":3}`, "k1", `{"layers":3}`},
		{"", "k2", ""},
	}
	for i, st := range steps {
		if st.put != "" {
			if err := s.PutModelHeader(ctx, st.key, []byte(st.put)); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
		}
		got, err := s.ModelHeader(ctx, st.key)
		if err != nil || string(got) != st.want {
			t.Errorf("step %d: ModelHeader(%s) = %q, %v; want %q", i, st.key, got, err, st.want)
		}
	}
	after, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Serial != before.Serial || after.Len() != before.Len() {
		t.Errorf("the cache changed the records: serial %d → %d, %d → %d records", before.Serial, after.Serial, before.Len(), after.Len())
	}
	if err := s.verify(ctx); err != nil {
		t.Errorf("the state with cached headers does not verify: %v", err)
	}
}

package digest

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFileAndCached(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	cases := []struct {
		content string
		want    string
	}{
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	}
	for i, c := range cases {
		if err := os.WriteFile(p, []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		// A rewrite within the same clock tick must still be seen.
		_ = os.Chtimes(p, time.Now(), time.Unix(int64(1000+i), 0))
		sum, size, err := File(p)
		if err != nil || sum != c.want || size != int64(len(c.content)) {
			t.Fatalf("File(%q) = %s, %d, %v; want %s", c.content, sum, size, err, c.want)
		}
		cached, err := Cached(p)
		if err != nil || cached != c.want {
			t.Fatalf("Cached(%q) = %s, %v; want %s", c.content, cached, err, c.want)
		}
	}
	if _, err := Cached(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("Cached of a missing file: want an error")
	}
}

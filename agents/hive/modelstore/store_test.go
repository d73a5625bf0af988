package modelstore

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/gguf"
)

func TestStoreSynthIsIdempotentAndPersisted(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m, err := s.Provision(ctx, "tiny", hiveapi.ModelSpec{Source: "synth:tiny"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Architecture != "llama" || m.Parameters == 0 || m.SHA256 == "" || m.Provider != "synth" {
		t.Errorf("unexpected entry %+v", m)
	}
	fi, _ := os.Stat(m.Path)
	again, err := s.Provision(ctx, "tiny", hiveapi.ModelSpec{Source: "synth:tiny", SHA256: m.SHA256}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fi2, _ := os.Stat(m.Path)
	if !reflect.DeepEqual(again, m) || !fi.ModTime().Equal(fi2.ModTime()) {
		t.Errorf("second provision rewrote the model: %+v vs %+v", again, m)
	}
	s.Close()

	s2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := s2.Get("tiny"); !ok || !reflect.DeepEqual(got, m) {
		t.Fatalf("after reopen Get = %+v, %v; want %+v", got, ok, m)
	}
	if err := s2.Delete("tiny"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.Path); !os.IsNotExist(err) {
		t.Errorf("model file still there after delete: %v", err)
	}
	var ae *api.Error
	if err := s2.Delete("tiny"); !errors.As(err, &ae) || ae.Status != 404 {
		t.Errorf("second delete = %v, want 404", err)
	}
}

func TestStoreSharesOneDownload(t *testing.T) {
	var blob bytes.Buffer
	if _, err := gguf.Synth(context.Background(), &blob, "tiny", 7); err != nil {
		t.Fatal(err)
	}
	fs := &faultServer{blob: blob.Bytes()}
	srv := httptest.NewServer(fs.handler(t))
	defer srv.Close()
	s, err := Open(t.TempDir(), Options{Downloader: testDownloader()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	results := make([]hiveapi.Model, 5)
	errs := make([]error, 5)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = s.Provision(context.Background(), "m", hiveapi.ModelSpec{Source: "http://" + srv.Listener.Addr().String() + "/r", File: "m.gguf"}, nil)
		}()
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !reflect.DeepEqual(results[i], results[0]) {
			t.Errorf("result %d differs", i)
		}
	}
	if fs.gets != 1 {
		t.Errorf("%d GETs for 5 concurrent requests, want 1", fs.gets)
	}
	if results[0].Architecture != "llama" {
		t.Errorf("GGUF metadata not read: %+v", results[0])
	}
}

func TestStoreRejectsNonGGUF(t *testing.T) {
	fs := &faultServer{blob: []byte("not a model at all")}
	srv := httptest.NewServer(fs.handler(t))
	defer srv.Close()
	s, err := Open(t.TempDir(), Options{Downloader: testDownloader()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Provision(context.Background(), "bad", hiveapi.ModelSpec{Source: srv.URL + "/r", File: "bad.gguf"}, nil)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != "INVALID_MODEL" {
		t.Fatalf("err = %v, want INVALID_MODEL", err)
	}
	if len(s.List()) != 0 {
		t.Errorf("a bad file was catalogued: %+v", s.List())
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "bad")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the failed model left its folder behind: %v", err)
	}
	srv.Close()
	if _, err := s.Provision(context.Background(), "gone", hiveapi.ModelSpec{Source: srv.URL + "/r", File: "gone.gguf"}, nil); err == nil {
		t.Fatal("a download from a closed server succeeded")
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "gone")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the failed download left its folder behind: %v", err)
	}
}

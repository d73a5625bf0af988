package main

import (
	"io"
	"log/slog"
	"os"
	"runtime"
	"testing"

	"github.com/rbee-dev/rbee/agents/worker"
	"github.com/rbee-dev/rbee/spec"
)

func TestLimitGoProcs(t *testing.T) {
	cpus := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(cpus)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cases := []struct {
		name string
		env  string // $GOMAXPROCS; "" unset
		cfg  worker.Config
		want int
	}{
		{"CPU threads on every core leave one", "", worker.Config{Threads: cpus}, 1},
		{"more threads than cores leave one", "", worker.Config{Threads: cpus + 4, Backend: spec.BackendCPU}, 1},
		{"$GOMAXPROCS wins", "3", worker.Config{Threads: cpus}, cpus},
		{"a GPU worker keeps the default", "", worker.Config{Threads: cpus, Backend: "cuda"}, cpus},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			runtime.GOMAXPROCS(cpus)
			if c.env != "" {
				t.Setenv("GOMAXPROCS", c.env)
			} else if v, ok := os.LookupEnv("GOMAXPROCS"); ok {
				os.Unsetenv("GOMAXPROCS")
				t.Cleanup(func() { os.Setenv("GOMAXPROCS", v) })
			}
			limitGoProcs(log, c.cfg)
			if got := runtime.GOMAXPROCS(0); got != c.want {
				t.Errorf("GOMAXPROCS = %d, want %d", got, c.want)
			}
		})
	}
}

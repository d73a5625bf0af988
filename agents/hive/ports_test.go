package hive

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/internal/testsshd"
)

// freePort returns a loopback port that was free a moment ago, below the
// range the kernel gives outgoing connections.
func freePort(t *testing.T) int {
	t.Helper()
	p, err := testsshd.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A worker configured with a port listens exactly there; a second worker
// asking for the same port, or for one another process holds, gets 409
// PORT_IN_USE naming the port and its holder, not another port.
func TestFixedWorkerPort(t *testing.T) {
	_, c := newTestHive(t, "sleep 1000")
	ctx := context.Background()
	if _, err := c.PutModel(ctx, "tiny", hiveapi.ModelSpec{Source: "synth:tiny"}, nil); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	st, err := c.PutWorker(ctx, "a", hiveapi.WorkerConfig{Model: "tiny", CtxSize: 512, Slots: 1, Port: port}, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200 && st.PID == 0; i++ {
		time.Sleep(20 * time.Millisecond)
		ws, err := c.Workers(ctx)
		if err != nil || len(ws) != 1 {
			t.Fatalf("workers %+v %v", ws, err)
		}
		st = ws[0]
	}
	if st.Port != port || !strings.HasSuffix(st.URL, ":"+strconv.Itoa(port)) || st.Config.Port != port {
		t.Fatalf("worker a: port %d url %s config %+v, want port %d", st.Port, st.URL, st.Config, port)
	}

	var ae *api.Error
	_, err = c.PutWorker(ctx, "b", hiveapi.WorkerConfig{Model: "tiny", CtxSize: 512, Slots: 1, Port: port}, false)
	if !errors.As(err, &ae) || ae.Status != 409 || ae.Code != "PORT_IN_USE" ||
		!strings.Contains(ae.Message, "port "+strconv.Itoa(port)) || !strings.Contains(ae.Message, "worker a of this hive") {
		t.Fatalf("second worker on port %d: %v", port, err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	held := l.Addr().(*net.TCPAddr).Port
	_, err = c.PutWorker(ctx, "c", hiveapi.WorkerConfig{Model: "tiny", CtxSize: 512, Slots: 1, Port: held}, false)
	if !errors.As(err, &ae) || ae.Code != "PORT_IN_USE" || !strings.Contains(ae.Message, "port "+strconv.Itoa(held)) ||
		!strings.Contains(ae.Message, "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("worker on a port another process holds: %v", err)
	}
	ws, err := c.Workers(ctx)
	if err != nil || len(ws) != 1 {
		t.Fatalf("refused workers were kept: %+v %v", ws, err)
	}

	// Replacing a worker with the same fixed port reuses it.
	if _, err := c.PutWorker(ctx, "a", hiveapi.WorkerConfig{Model: "tiny", CtxSize: 1024, Slots: 1, Port: port}, false); err != nil {
		t.Fatalf("replace a on its own port: %v", err)
	}
	// Deleting a frees its port for another worker.
	if err := c.DeleteWorker(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutWorker(ctx, "b", hiveapi.WorkerConfig{Model: "tiny", CtxSize: 512, Slots: 1, Port: port}, false); err != nil {
		t.Fatalf("port of a deleted worker: %v", err)
	}
}

// Picked ports skip the ports other workers are configured with.
func TestAllocateSkipsFixedPorts(t *testing.T) {
	p := newPortPool("127.0.0.1", 18001, discardLogger())
	p.canBind = func(string, int) bool { return true }
	p.fix("fixed", 18001)
	if got, err := p.allocate("other"); err != nil || got != 18002 {
		t.Fatalf("allocate = %d, %v; want 18002", got, err)
	}
	if got, err := p.allocate("fixed"); err != nil || got != 18001 {
		t.Fatalf("allocate for the port's own worker = %d, %v; want 18001", got, err)
	}
}

// A zero port is left out of the config JSON, so hashes of workers without
// a port are what they were before ports existed; a port changes the hash.
func TestConfigHashPort(t *testing.T) {
	c := hiveapi.WorkerConfig{Model: "tiny", Pool: "chat"}
	b, _ := json.Marshal(c.Normalized())
	if strings.Contains(string(b), "port") {
		t.Errorf("zero port is in the JSON: %s", b)
	}
	withPort := c
	withPort.Port = 8100
	if hiveapi.ConfigHash(c) == hiveapi.ConfigHash(withPort) {
		t.Error("the port does not change the config hash")
	}
}

// Package testetcd runs real etcd servers (Debian's etcd-server,
// /usr/bin/etcd) on loopback for tests, benchmarks and features: one member
// or a cluster of one member per loopback address, with their data in a
// folder the caller owns.
package testetcd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rbee-dev/rbee/internal/testsshd"
)

// ErrNoEtcd is Start's error when no etcd binary is installed.
var ErrNoEtcd = errors.New("etcd is not installed (scripts/deps.sh installs etcd-server)")

// Cluster is a running etcd cluster.
type Cluster struct {
	Endpoints []string // client URL of each member
	members   []*member
}

type member struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs one member per host (loopback addresses such as 127.0.0.2)
// with data and logs under dir, and waits up to 30 s until every member is
// healthy. Stop it with Stop.
func Start(dir string, hosts ...string) (*Cluster, error) {
	bin := os.Getenv("RBEE_ETCD")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("etcd"); err != nil {
			return nil, ErrNoEtcd
		}
	}
	var peers, initial []string
	c := &Cluster{}
	for i, h := range hosts {
		cp, err := testsshd.FreePort(h)
		if err != nil {
			return nil, err
		}
		pp, err := testsshd.FreePort(h)
		if err != nil {
			return nil, err
		}
		c.Endpoints = append(c.Endpoints, fmt.Sprintf("http://%s:%d", h, cp))
		peers = append(peers, fmt.Sprintf("http://%s:%d", h, pp))
		initial = append(initial, fmt.Sprintf("m%d=%s", i+1, peers[i]))
	}
	for i := range hosts {
		if err := c.start(bin, dir, i, peers[i], strings.Join(initial, ",")); err != nil {
			c.Stop()
			return nil, err
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := c.healthy()
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) {
			c.Stop()
			return nil, fmt.Errorf("etcd did not come up within 30s: %w (logs in %s)", err, dir)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *Cluster) start(bin, dir string, i int, peer, initial string) error {
	name := fmt.Sprintf("m%d", i+1)
	log, err := os.Create(filepath.Join(dir, "etcd-"+name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "--name", name, "--data-dir", filepath.Join(dir, "etcd-"+name),
		"--listen-client-urls", c.Endpoints[i], "--advertise-client-urls", c.Endpoints[i],
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", initial, "--initial-cluster-token", filepath.Base(dir))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	m := &member{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); log.Close(); close(m.done) }()
	c.members = append(c.members, m)
	return nil
}

func (c *Cluster) healthy() error {
	for _, e := range c.Endpoints {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e+"/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		if !strings.Contains(string(b), `"true"`) {
			return fmt.Errorf("etcd %s: %s", e, b)
		}
	}
	return nil
}

// Kill kills member i (from 0) with SIGKILL and waits until it is gone.
func (c *Cluster) Kill(i int) error {
	if i < 0 || i >= len(c.members) {
		return fmt.Errorf("no etcd member %d", i)
	}
	m := c.members[i]
	_ = m.cmd.Process.Kill()
	<-m.done
	return nil
}

// Stop kills every member.
func (c *Cluster) Stop() {
	for i := range c.members {
		_ = c.Kill(i)
	}
}

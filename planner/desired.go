package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"

	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/secret"
	"github.com/rbee-dev/rbee/spec"
	"github.com/rbee-dev/rbee/state"
)

// WorkerID is the id a worker of pool with index i has on its hive.
func WorkerID(pool string, index int) string { return pool + "-" + strconv.Itoa(index) }

// RecordedWorkerID is the id the hive knows worker w by: the one recorded,
// else the one WorkerID gives.
func RecordedWorkerID(w *state.WorkerRecord) string {
	if w.ID != "" {
		return w.ID
	}
	return WorkerID(w.Pool, w.Index)
}

// Desired turns the configuration into the records the fleet should have:
// one node record per node, one model record per (model, node) that a pool
// needs, one worker record per pool × node × replica. binarySum (may be nil)
// gives the sha256 of the hive binary for a node's binary path.
func Desired(cfg *config.Config, binarySum func(path string) (string, error)) (*state.Snapshot, error) {
	s := state.NewSnapshot()
	sums := map[string]string{}
	for _, n := range cfg.Nodes {
		if cfg.Node(n.Name) != n {
			continue
		}
		r := &state.NodeRecord{Name: n.Name, Connection: n.Connection, Host: n.Host, Port: n.Port, User: n.User,
			Identity: n.Identity, KnownHosts: n.KnownHosts, InsecureIgnoreHostKey: n.InsecureIgnoreHostKey, InstallDir: n.InstallDir,
			InstallMode: n.InstallMode, FileRoots: slices.Clone(n.FileRoots), Binary: n.Binary, Env: maps.Clone(n.Env), EnvDigest: secret.Digests(n.Env), HivePort: n.HivePort,
			HiveURL: HiveURL(n.Connection == config.ConnectionLocal, n.Host, n.HivePort)}
		if binarySum != nil {
			sum, ok := sums[n.Binary]
			if !ok {
				var err error
				if sum, err = binarySum(n.Binary); err != nil {
					return nil, fmt.Errorf("node.%s: checksum of the hive binary: %w", n.Name, err)
				}
				sums[n.Binary] = sum
			}
			r.BinarySHA256 = sum
		}
		s.Nodes[r.Addr()] = r
	}
	for _, pl := range cfg.Placements() {
		m := pl.Model
		r := &state.ModelRecord{Node: pl.Node.Name, Name: m.Name, Source: m.Source, File: m.File, Revision: m.Revision, SHA256: m.SHA256, Keep: m.Keep}
		s.Models[r.Addr()] = r
	}
	for _, p := range cfg.Pools {
		if cfg.Pool(p.Name) != p {
			continue
		}
		for _, nn := range p.Nodes {
			for i := 0; i < p.Replicas; i++ {
				r := &state.WorkerRecord{Pool: p.Name, Node: nn, Index: i, Model: p.Model, ID: WorkerID(p.Name, i), Worker: p.Worker}
				if p.SLO != nil {
					r.SLO = state.SLO{MinDecodeTPS: p.SLO.MinDecodeTPS, MaxTTFT: p.SLO.MaxTTFT}
				}
				if p.Port != 0 {
					r.Port = p.Port + i
				}
				r.ConfigHash = workerHash(r)
				s.Workers[r.Addr()] = r
			}
		}
	}
	return s, nil
}

// HiveURL is the base URL of a node's hive: on 127.0.0.1 for a local node
// (the hive binds loopback), on the node's host otherwise.
func HiveURL(local bool, host string, port int) string {
	if local {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(port))
}

// workerDiff lists the settings that differ between the recorded worker h
// and the desired w; none when their config hashes agree.
func workerDiff(h, w *state.WorkerRecord) []spec.Difference {
	if h.ConfigHash != "" && h.ConfigHash == w.ConfigHash {
		return nil
	}
	return spec.Diff(h.Worker, w.Worker)
}

// workerHash is the digest of what a worker is asked to run: its model,
// fixed port and settings. Two workers with the same hash need no change.
func workerHash(r *state.WorkerRecord) string { return hashOf([]any{r.Model, r.Port, r.Worker}) }

func hashOf(v any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

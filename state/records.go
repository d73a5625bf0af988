package state

import (
	"time"

	"github.com/rbee-dev/rbee/spec"
)

// NodeStatus is a node's status as apply and refresh record it.
type NodeStatus string

// Node statuses recorded by apply and refresh.
const (
	NodeInstalling   NodeStatus = "installing"    // apply started installing the hive and has not finished
	NodeReady        NodeStatus = "ready"         // the hive answered /v1/health
	NodeUnreachable  NodeStatus = "unreachable"   // refresh could not reach the hive
	NodeTokenRefused NodeStatus = "token_refused" // the hive answers but refuses rbee's token (401)
	NodeFailed       NodeStatus = "failed"        // the last install failed
)

// ModelStatus is a model file's status on a node.
type ModelStatus string

// Model statuses recorded by apply and refresh.
const (
	ModelDownloading ModelStatus = "downloading" // provisioning started and has not finished
	ModelReady       ModelStatus = "ready"       // the file is present with the recorded sha256
	ModelMissing     ModelStatus = "missing"     // refresh: the hive no longer has the file
	ModelChanged     ModelStatus = "changed"     // refresh: the file's sha256 differs from what was provisioned
	ModelFailed      ModelStatus = "failed"      // the last provisioning failed
)

// WorkerState is a worker's state as its hive reports it.
type WorkerState string

// Worker states as the hive reports them, plus "missing" for a worker the
// hive does not know about.
const (
	WorkerLoading  WorkerState = "loading"
	WorkerIdle     WorkerState = "idle"
	WorkerBusy     WorkerState = "busy"
	WorkerDraining WorkerState = "draining" // finishing its requests before it stops
	WorkerFailed   WorkerState = "failed"   // the hive gave up restarting it (crash loop)
	WorkerCrashed  WorkerState = "crashed"  // exited unexpectedly; the hive may restart it
	WorkerStopped  WorkerState = "stopped"  // stopped on purpose (idle timeout) or not started
	WorkerMissing  WorkerState = "missing"  // refresh: the hive has no such worker
)

// Record is any of NodeRecord, ModelRecord and WorkerRecord.
type Record interface {
	Addr() Addr
}

// NodeRecord is what rbee knows about a node and its hive. Env holds the
// environment's values in a desired record only (the planner fills it from
// the configuration, apply delivers it to the hive) and is never written: to
// state, plan files or output. EnvDigest (key → secret.Digest of the value)
// is what is recorded.
type NodeRecord struct {
	Name                  string            `json:"name"`
	Connection            string            `json:"connection"` // local | ssh
	Host                  string            `json:"host,omitempty"`
	Port                  int               `json:"port,omitempty"` // SSH port
	User                  string            `json:"user,omitempty"`
	Identity              string            `json:"identity,omitempty"`
	KnownHosts            string            `json:"known_hosts,omitempty"` // empty: ~/.ssh/known_hosts
	InsecureIgnoreHostKey bool              `json:"insecure_ignore_host_key,omitempty"`
	InstallDir            string            `json:"install_dir"`
	InstallMode           string            `json:"install_mode,omitempty"`
	FileRoots             []string          `json:"file_roots,omitempty"` // the only folders file:// models may come from
	Binary                string            `json:"binary,omitempty"`     // path of the binary copied (empty: the rbee executable)
	Env                   map[string]string `json:"-"`
	EnvDigest             map[string]string `json:"env_digest,omitempty"`
	HivePort              int               `json:"hive_port"`
	HiveURL               string            `json:"hive_url,omitempty"`
	HiveVersion           string            `json:"hive_version,omitempty"`
	BinarySHA256          string            `json:"binary_sha256,omitempty"` // of the hive binary that runs (apply / refresh)
	Status                NodeStatus        `json:"status,omitempty"`
	LastContact           time.Time         `json:"last_contact,omitzero"`
	Warnings              []string          `json:"warnings,omitempty"`
	// CPUVariant is the ggml CPU library the node's workers load, as its
	// hive last reported (refresh).
	CPUVariant string `json:"cpu_variant,omitempty"`
}

// Addr is node.<name>.
func (r NodeRecord) Addr() Addr { return NodeAddr(r.Name) }

// ModelRecord is a model file on one node.
type ModelRecord struct {
	Node         string      `json:"node"`
	Name         string      `json:"name"`
	Source       string      `json:"source"`
	File         string      `json:"file,omitempty"`
	Revision     string      `json:"revision,omitempty"`
	SHA256       string      `json:"sha256,omitempty"`        // the pin from the configuration, if any
	ActualSHA256 string      `json:"actual_sha256,omitempty"` // of the file on the node
	Keep         bool        `json:"keep,omitempty"`
	Path         string      `json:"path,omitempty"` // on the node
	Size         int64       `json:"size,omitempty"`
	Status       ModelStatus `json:"status,omitempty"`
	UpdatedAt    time.Time   `json:"updated_at,omitzero"`
}

// Addr is model.<name>@<node>.
func (r ModelRecord) Addr() Addr { return ModelAddr(r.Node, r.Name) }

// WorkerRecord is one llama.cpp worker of a pool on a node. Its settings
// (ctx_size, slots, ...) are spec.Worker, as the pool declares them.
type WorkerRecord struct {
	Pool     string      `json:"pool"`
	Node     string      `json:"node"`
	Index    int         `json:"index"`
	Model    string      `json:"model"`
	ID       string      `json:"id,omitempty"` // the hive's worker id
	URL      string      `json:"url,omitempty"`
	Port     int         `json:"port,omitempty"` // desired fixed port (0: hive picks) or the actual one
	PID      int         `json:"pid,omitempty"`
	State    WorkerState `json:"state,omitempty"`
	Restarts int         `json:"restarts,omitempty"`
	// ConfigHash digests the model, fixed port and settings the worker was
	// asked to run (planner.Desired): equal hashes mean nothing to change.
	ConfigHash string `json:"config_hash,omitempty"`
	spec.Worker
	SLO       SLO       `json:"slo,omitzero"`    // the pool's slo block; zero: none, and no canary runs
	Canary    Canary    `json:"canary,omitzero"` // what refresh's canary last measured
	UpdatedAt time.Time `json:"updated_at,omitzero"`

	// CPUVariant and OffloadedLayers are what the worker reported it
	// computes with (the ggml CPU library, the layers on its GPU) when it
	// last became ready; Backend and Device are the pool's.
	CPUVariant      string `json:"cpu_variant,omitempty"`
	OffloadedLayers int    `json:"offloaded_layers,omitempty"`
}

// SLO is what a worker's canary must measure (config.SLO, as recorded).
type SLO struct {
	MinDecodeTPS float64       `json:"min_decode_tps,omitempty"` // tokens per second of one stream
	MaxTTFT      time.Duration `json:"max_ttft_ns,omitempty"`    // time to the first token
}

// Canary is what the canary (a fixed short greedy request) measured on a
// worker, and the fingerprint of its output taken first after the worker
// was created (the baseline), with the model file and engine build it was
// taken on.
type Canary struct {
	At          time.Time     `json:"at,omitzero"`
	DecodeTPS   float64       `json:"decode_tps,omitempty"`
	TTFT        time.Duration `json:"ttft_ns,omitempty"`
	Fingerprint string        `json:"fingerprint,omitempty"` // of the latest output
	Engine      string        `json:"engine,omitempty"`      // the engine build the latest ran on
	Baseline    string        `json:"baseline,omitempty"`    // the fingerprint first taken
	// BaselineModel and BaselineEngine are the model file's sha256 and the
	// engine build the baseline was taken on: only on the same ones is
	// another fingerprint drift.
	BaselineModel  string `json:"baseline_model_sha256,omitempty"`
	BaselineEngine string `json:"baseline_engine,omitempty"`
	// Failed is why the latest canary failed (the worker answered an error,
	// or not in time); the figures above are then older. A canary that runs
	// clears it; one skipped for want of a free slot leaves it.
	Failed string `json:"failed,omitempty"`
}

// Addr is worker.<pool>[<node>/<index>].
func (r WorkerRecord) Addr() Addr { return WorkerAddr(r.Pool, r.Node, r.Index) }

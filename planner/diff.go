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
	"strings"
	"time"

	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/digest"
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
			InstallMode: n.InstallMode, Binary: n.Binary, Env: maps.Clone(n.Env), HivePort: n.HivePort,
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

// differ holds one comparison.
type differ struct {
	cfg     *config.Config
	want    *state.Snapshot
	have    *state.Snapshot
	destroy bool
	changes map[state.Addr]*Change
}

func (d *differ) add(c *Change) {
	if c != nil && c.Action != NoOp {
		d.changes[c.Addr] = c
	}
}

func (d *differ) diff() []*Change {
	d.changes = map[state.Addr]*Change{}
	for a, w := range d.want.Nodes {
		d.add(diffNode(w, d.have.Nodes[a]))
	}
	for a, h := range d.have.Nodes {
		if _, ok := d.want.Nodes[a]; !ok {
			d.add(&Change{Addr: a, Action: Delete, Before: h, Reasons: []string{d.goneReason("node " + h.Name)}})
		}
	}
	for a, w := range d.want.Models {
		d.add(diffModel(w, d.have.Models[a]))
	}
	for a, h := range d.have.Models {
		if _, ok := d.want.Models[a]; !ok {
			if c := d.deleteModel(h); c != nil {
				d.add(c)
			}
		}
	}
	for a, w := range d.want.Workers {
		d.add(diffWorker(w, d.have.Workers[a]))
	}
	for a, h := range d.have.Workers {
		if _, ok := d.want.Workers[a]; !ok {
			d.add(&Change{Addr: a, Action: Delete, Before: h, Reasons: []string{d.workerGoneReason(h)}})
		}
	}
	d.cascade()
	out := make([]*Change, 0, len(d.changes))
	for _, c := range d.changes {
		out = append(out, c)
	}
	slices.SortFunc(out, func(x, y *Change) int { return compareAddr(x.Addr, y.Addr) })
	return out
}

// compareAddr orders addresses as state.Addr.Less does.
func compareAddr(x, y state.Addr) int {
	if x.Less(y) {
		return -1
	}
	if y.Less(x) {
		return 1
	}
	return 0
}

func (d *differ) goneReason(what string) string {
	if d.destroy {
		return "destroy"
	}
	return what + " is no longer in the configuration"
}

func (d *differ) deleteModel(h *state.ModelRecord) *Change {
	c := &Change{Addr: h.Addr(), Action: Delete, Before: h}
	switch {
	case d.destroy:
		c.Reasons = []string{"destroy"}
	case d.cfg.Model(h.Name) == nil:
		c.Reasons = []string{fmt.Sprintf("model %s is no longer in the configuration", h.Name)}
	case d.cfg.Model(h.Name).Keep:
		if d.have.Node(h.Node) != nil && d.want.Node(h.Node) != nil {
			return nil // keep = true: the file stays while its node and model block exist
		}
		c.Reasons = []string{fmt.Sprintf("node %s is no longer in the configuration", h.Node)}
	default:
		c.Reasons = []string{fmt.Sprintf("no pool on node %s uses it any more (set keep = true on the model to keep the file)", h.Node)}
	}
	return c
}

func (d *differ) workerGoneReason(h *state.WorkerRecord) string {
	if d.destroy {
		return "destroy"
	}
	p := d.cfg.Pool(h.Pool)
	switch {
	case p == nil:
		return fmt.Sprintf("pool %s is no longer in the configuration", h.Pool)
	case !slices.Contains(p.Nodes, h.Node):
		return fmt.Sprintf("node %s was removed from pool %s", h.Node, h.Pool)
	}
	return fmt.Sprintf("replicas of pool %s reduced to %d", h.Pool, p.Replicas)
}

func arrow(field string, a, b any) string {
	return fmt.Sprintf("%s %v → %v", field, show(a), show(b))
}

func show(v any) any {
	switch x := v.(type) {
	case string:
		if x == "" {
			return `""`
		}
		return x
	case time.Duration:
		if x == 0 {
			return "none"
		}
	case map[string]string:
		keys := slices.Sorted(maps.Keys(x))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + x[k]
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return v
}

func diffNode(w, h *state.NodeRecord) *Change {
	c := &Change{Addr: w.Addr(), Before: h, After: w}
	if h == nil {
		c.Action = Create
		where := "on this machine"
		if w.Connection == config.ConnectionSSH {
			where = "over SSH at " + net.JoinHostPort(w.Host, strconv.Itoa(w.Port))
		}
		c.Reasons = []string{fmt.Sprintf("install hive %s in %s, port %d", where, w.InstallDir, w.HivePort)}
		return c
	}
	var replace, update []string
	if h.Connection != w.Connection {
		replace = append(replace, arrow("connection", h.Connection, w.Connection))
	}
	if h.Host != w.Host {
		replace = append(replace, arrow("host", h.Host, w.Host))
	}
	if h.Port != w.Port {
		replace = append(replace, arrow("port", h.Port, w.Port))
	}
	if h.User != w.User {
		replace = append(replace, arrow("user", h.User, w.User))
	}
	if h.InstallDir != w.InstallDir {
		replace = append(replace, arrow("install_dir", h.InstallDir, w.InstallDir))
	}
	if h.HivePort != w.HivePort {
		update = append(update, arrow("hive_port", h.HivePort, w.HivePort))
	}
	if !maps.Equal(h.Env, w.Env) {
		update = append(update, arrow("env", h.Env, w.Env))
	}
	if h.InstallMode != w.InstallMode {
		update = append(update, arrow("install_mode", h.InstallMode, w.InstallMode))
	}
	if h.Binary != w.Binary {
		update = append(update, arrow("binary", h.Binary, w.Binary))
	}
	if h.Identity != w.Identity {
		update = append(update, arrow("identity", h.Identity, w.Identity))
	}
	if h.KnownHosts != w.KnownHosts {
		update = append(update, arrow("known_hosts", h.KnownHosts, w.KnownHosts))
	}
	if h.InsecureIgnoreHostKey != w.InsecureIgnoreHostKey {
		update = append(update, arrow("insecure_ignore_host_key", h.InsecureIgnoreHostKey, w.InsecureIgnoreHostKey))
	}
	if w.BinarySHA256 != "" && h.BinarySHA256 != "" && h.BinarySHA256 != w.BinarySHA256 {
		update = append(update, fmt.Sprintf("binary checksum differs (hive runs %s…, want %s…)", digest.Short(h.BinarySHA256), digest.Short(w.BinarySHA256)))
	}
	switch h.Status {
	case state.NodeTokenRefused:
		update = append(update, tokenRefused)
	case state.NodeUnreachable:
		r := "node unreachable"
		if !h.LastContact.IsZero() {
			r += " (last contact " + h.LastContact.UTC().Format(time.RFC3339) + ")"
		}
		update = append(update, r+": start the hive again")
	case state.NodeInstalling:
		update = append(update, "previous install did not finish")
	case state.NodeFailed:
		update = append(update, "previous install failed")
	}
	c.decide(replace, nil, update)
	return c
}

func diffModel(w, h *state.ModelRecord) *Change {
	c := &Change{Addr: w.Addr(), Before: h, After: w}
	if h == nil {
		c.Action = Create
		c.Reasons = []string{"provision " + describeSource(w)}
		return c
	}
	var replace, update, create []string
	if h.Source != w.Source {
		replace = append(replace, arrow("source", h.Source, w.Source))
	}
	if h.File != w.File {
		replace = append(replace, arrow("file", h.File, w.File))
	}
	if h.Revision != w.Revision {
		replace = append(replace, arrow("revision", h.Revision, w.Revision))
	}
	if h.SHA256 != w.SHA256 {
		if w.SHA256 != "" && h.ActualSHA256 != "" && h.ActualSHA256 != w.SHA256 {
			replace = append(replace, fmt.Sprintf("sha256 pin changed to %s…, the file on the node is %s…", digest.Short(w.SHA256), digest.Short(h.ActualSHA256)))
		} else {
			update = append(update, arrow("sha256", digest.Short(h.SHA256), digest.Short(w.SHA256)))
		}
	} else if w.SHA256 != "" && h.ActualSHA256 != "" && h.ActualSHA256 != w.SHA256 {
		replace = append(replace, fmt.Sprintf("file sha256 %s… differs from the pin %s…", digest.Short(h.ActualSHA256), digest.Short(w.SHA256)))
	}
	if h.Keep != w.Keep {
		update = append(update, arrow("keep", h.Keep, w.Keep))
	}
	switch h.Status {
	case state.ModelMissing:
		create = append(create, "model file missing on the node")
	case state.ModelChanged:
		replace = append(replace, "file on the node changed (sha256 differs from the provisioned one)")
	case state.ModelFailed:
		create = append(create, "previous provisioning failed")
	case state.ModelDownloading:
		create = append(create, "previous provisioning did not finish")
	}
	c.decide(replace, create, update)
	return c
}

// decide sets the action from the reasons found, strongest first: any reason
// to replace wins over one to create, which wins over one to update in place.
func (c *Change) decide(replace, create, update []string) {
	switch {
	case len(replace) > 0:
		c.Action, c.Reasons = Replace, append(append(replace, create...), update...)
	case len(create) > 0:
		c.Action, c.Reasons = Create, append(create, update...)
	case len(update) > 0:
		c.Action, c.Reasons = Update, update
	default:
		c.Action = NoOp
	}
}

func describeSource(m *state.ModelRecord) string {
	s := m.Source
	if m.File != "" {
		s += " file " + m.File
	}
	if m.Revision != "" && m.Revision != config.DefaultModelRevision {
		s += " @" + m.Revision
	}
	return s
}

func diffWorker(w, h *state.WorkerRecord) *Change {
	c := &Change{Addr: w.Addr(), Before: h, After: w}
	if h == nil {
		c.Action = Create
		c.Reasons = []string{fmt.Sprintf("start %s (%s, ctx_size %d, %d slots)", w.Model, w.Backend, w.CtxSize, w.Slots)}
		return c
	}
	var replace, update, create []string
	if h.Model != w.Model {
		replace = append(replace, arrow("model", h.Model, w.Model))
	}
	if w.Port != 0 && h.Port != w.Port {
		replace = append(replace, arrow("port", h.Port, w.Port))
	}
	for _, d := range workerDiff(h, w) {
		if d.Field.Replace {
			replace = append(replace, arrow(d.Field.Name, d.Old, d.New))
		} else {
			update = append(update, arrow(d.Field.Name, d.Old, d.New))
		}
	}
	switch h.State {
	case state.WorkerCrashed:
		// The hive restarts it after its backoff; replacing it now would race
		// the hive. Only a worker the hive gave up on (failed) is replaced.
	case state.WorkerFailed:
		replace = append(replace, fmt.Sprintf("worker failed (the hive gave up after %d restarts)", h.Restarts))
	case state.WorkerMissing:
		create = append(create, "worker missing on the hive")
	case state.WorkerStopped:
		if w.IdleTimeout == 0 {
			create = append(create, "worker stopped")
		}
	}
	c.decide(replace, create, update)
	return c
}

// cascade replaces what sits on a replaced resource: models and workers on a
// replaced node, workers of a replaced model, workers on a node whose env changed.
func (d *differ) cascade() {
	replacedNode := map[string]bool{}
	envChanged := map[string]bool{}
	for _, c := range d.changes {
		if c.Addr.Kind != state.KindNode {
			continue
		}
		if c.Action == Replace {
			replacedNode[c.Addr.Node] = true
		}
		if c.Action == Update && c.Before != nil && c.After != nil && !maps.Equal(c.Before.(*state.NodeRecord).Env, c.After.(*state.NodeRecord).Env) {
			envChanged[c.Addr.Node] = true
		}
	}
	bump := func(a state.Addr, reason string) {
		var before, after state.Record
		if r, ok := d.have.Get(a); ok {
			before = r
		} else {
			return // not running: nothing to replace
		}
		if r, ok := d.want.Get(a); ok {
			after = r
		} else {
			return // being deleted anyway
		}
		if c, ok := d.changes[a]; ok {
			if c.Action == Create || c.Action == Update {
				c.Action = Replace
			}
			if c.Action == Replace {
				c.Reasons = append(c.Reasons, reason)
			}
			return
		}
		d.changes[a] = &Change{Addr: a, Action: Replace, Before: before, After: after, Reasons: []string{reason}}
	}
	if len(replacedNode) > 0 {
		for a, m := range d.want.Models {
			if replacedNode[m.Node] {
				bump(a, fmt.Sprintf("node.%s is replaced", m.Node))
			}
		}
	}
	replacedModel := map[state.Addr]bool{}
	for a, c := range d.changes {
		if a.Kind == state.KindModel && c.Action == Replace {
			replacedModel[a] = true
		}
	}
	if len(replacedNode) == 0 && len(replacedModel) == 0 && len(envChanged) == 0 {
		return
	}
	for a, w := range d.want.Workers {
		switch {
		case replacedNode[w.Node]:
			bump(a, fmt.Sprintf("node.%s is replaced", w.Node))
		case replacedModel[state.ModelAddr(w.Node, w.Model)]:
			bump(a, fmt.Sprintf("model.%s@%s is replaced", w.Model, w.Node))
		case envChanged[w.Node]:
			bump(a, fmt.Sprintf("env of node.%s changed", w.Node))
		}
	}
}

// link fills DependsOn: on one node the hive comes before its models and a
// model before the workers that use it; deletions go the other way (workers,
// then models, then the hive). Only changes in the plan are listed.
func link(changes []*Change) {
	byAddr := make(map[state.Addr]*Change, len(changes))
	// per node: the worker changes that remove a worker (delete or replace), by model
	removals := map[string][]*Change{}
	for _, c := range changes {
		byAddr[c.Addr] = c
		if c.Addr.Kind != state.KindNode && (c.Action == Delete || c.Action == Replace) {
			removals[c.Addr.Node] = append(removals[c.Addr.Node], c)
		}
	}
	dep := func(c *Change, a state.Addr) {
		if d, ok := byAddr[a]; ok && d != c && !slices.Contains(c.DependsOn, a) {
			c.DependsOn = append(c.DependsOn, d.Addr)
		}
	}
	for _, c := range changes {
		node := state.NodeAddr(c.Addr.Node)
		switch {
		case c.Action == Delete && c.Addr.Kind == state.KindNode:
			for _, r := range removals[c.Addr.Node] {
				dep(c, r.Addr)
			}
		case c.Action == Delete && c.Addr.Kind == state.KindModel:
			for _, r := range removals[c.Addr.Node] {
				if r.Addr.Kind == state.KindWorker && r.Before != nil && r.Before.(*state.WorkerRecord).Model == c.Addr.Model {
					dep(c, r.Addr)
				}
			}
		case c.Action == Delete:
			// a worker deletion waits for nothing
		case c.Addr.Kind == state.KindModel:
			dep(c, node)
		case c.Addr.Kind == state.KindWorker:
			dep(c, node)
			if w, ok := c.After.(*state.WorkerRecord); ok {
				dep(c, state.ModelAddr(c.Addr.Node, w.Model))
			}
			// a worker taking a removed worker's port waits for that removal
			if w, ok := c.After.(*state.WorkerRecord); ok && w.Port != 0 {
				for _, r := range removals[c.Addr.Node] {
					if b, ok := r.Before.(*state.WorkerRecord); ok && r.Action == Delete && b.Port == w.Port {
						dep(c, r.Addr)
					}
				}
			}
		}
		slices.SortFunc(c.DependsOn, compareAddr)
	}
}

// target is one parsed -target: an exact address, or pool.P / model.M matching many.
type target struct {
	exact *state.Addr
	kind  state.Kind
	name  string
}

func parseTarget(s string) (target, error) {
	if a, err := state.ParseAddr(s); err == nil {
		return target{exact: &a}, nil
	}
	if name, ok := strings.CutPrefix(s, "pool."); ok && config.CheckName(name) == nil {
		return target{kind: state.KindWorker, name: name}, nil
	}
	if name, ok := strings.CutPrefix(s, "model."); ok && config.CheckName(name) == nil {
		return target{kind: state.KindModel, name: name}, nil
	}
	return target{}, fmt.Errorf("-target %q is not an address; use node.NAME, model.NAME, model.NAME@NODE, pool.NAME or worker.POOL[NODE/INDEX]", s)
}

// MatchTarget reports whether addr is selected by the -target value t:
// node.N selects everything on node N, pool.P every worker of P, model.M every
// copy of M, and a full address selects itself.
func MatchTarget(t string, addr state.Addr) bool {
	tg, err := parseTarget(t)
	if err != nil {
		return false
	}
	return tg.match(addr)
}

func (t target) match(a state.Addr) bool {
	if t.exact != nil {
		if t.exact.Kind == state.KindNode {
			return a.Node == t.exact.Node
		}
		return a == *t.exact
	}
	switch t.kind {
	case state.KindWorker:
		return a.Kind == state.KindWorker && a.Pool == t.name
	case state.KindModel:
		return a.Kind == state.KindModel && a.Model == t.name
	}
	return false
}

// filterTargets keeps the changes selected by the targets plus everything
// they depend on, and returns the targets that selected nothing.
func filterTargets(changes []*Change, targets []string) ([]*Change, []string) {
	byAddr := map[state.Addr]*Change{}
	for _, c := range changes {
		byAddr[c.Addr] = c
	}
	keep := map[state.Addr]bool{}
	var visit func(a state.Addr)
	visit = func(a state.Addr) {
		if keep[a] {
			return
		}
		keep[a] = true
		if c, ok := byAddr[a]; ok {
			for _, d := range c.DependsOn {
				visit(d)
			}
		}
	}
	var unmatched []string
	for _, t := range targets {
		tg, _ := parseTarget(t)
		hit := false
		for _, c := range changes {
			if tg.match(c.Addr) {
				visit(c.Addr)
				hit = true
			}
		}
		if !hit {
			unmatched = append(unmatched, t)
		}
	}
	out := changes[:0:0]
	for _, c := range changes {
		if keep[c.Addr] {
			out = append(out, c)
		}
	}
	return out, unmatched
}

// tokenRefused is the reason planned for a node whose hive answers but
// refuses rbee's token (state.NodeTokenRefused): apply reinstalls the hive
// with a fresh token.
const tokenRefused = "hive refused the token (401): rbee apply will reinstall the token"

// Drift lists how the refreshed snapshot differs from the recorded one, as
// changes: Update for a record whose live status differs, Delete for a record
// that vanished, Create for one that appeared.
func Drift(recorded, live *state.Snapshot) []*Change {
	var out []*Change
	for _, a := range recorded.Addrs() {
		before, _ := recorded.Get(a)
		after, ok := live.Get(a)
		if !ok {
			out = append(out, &Change{Addr: a, Action: Delete, Before: before, Reasons: []string{"no longer reported by its hive"}})
			continue
		}
		if reasons := driftReasons(before, after); len(reasons) > 0 {
			out = append(out, &Change{Addr: a, Action: Update, Before: before, After: after, Reasons: reasons})
		}
	}
	for _, a := range live.Addrs() {
		if _, ok := recorded.Get(a); !ok {
			after, _ := live.Get(a)
			out = append(out, &Change{Addr: a, Action: Create, After: after, Reasons: []string{"reported by a hive but not in state"}})
		}
	}
	return out
}

func driftReasons(before, after state.Record) []string {
	var out []string
	cmp := func(field string, a, b any) {
		if a != b {
			out = append(out, arrow(field, a, b))
		}
	}
	switch b := before.(type) {
	case *state.NodeRecord:
		a := after.(*state.NodeRecord)
		cmp("status", b.Status, a.Status)
		cmp("hive_version", b.HiveVersion, a.HiveVersion)
		if b.BinarySHA256 != a.BinarySHA256 {
			out = append(out, arrow("binary_sha256", digest.Short(b.BinarySHA256), digest.Short(a.BinarySHA256)))
		}
		cmp("hive_url", b.HiveURL, a.HiveURL)
	case *state.ModelRecord:
		a := after.(*state.ModelRecord)
		cmp("status", b.Status, a.Status)
		if b.ActualSHA256 != a.ActualSHA256 {
			out = append(out, arrow("actual_sha256", digest.Short(b.ActualSHA256), digest.Short(a.ActualSHA256)))
		}
		cmp("size", b.Size, a.Size)
		cmp("path", b.Path, a.Path)
	case *state.WorkerRecord:
		a := after.(*state.WorkerRecord)
		cmp("state", b.State, a.State)
		cmp("restarts", b.Restarts, a.Restarts)
		cmp("port", b.Port, a.Port)
		cmp("url", b.URL, a.URL)
	}
	return out
}

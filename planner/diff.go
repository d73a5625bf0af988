package planner

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/digest"
	"github.com/rbee-dev/rbee/state"
)

// differ holds one comparison.
type differ struct {
	cascaded map[state.Addr]bool // replaced because what they sit on is replaced
	cfg      *config.Config
	want     *state.Snapshot
	have     *state.Snapshot
	destroy  bool
	changes  map[state.Addr]*Change
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
	d.createBeforeDestroy()
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
	update = append(update, envReasons(h, w)...)
	if !slices.Equal(h.FileRoots, w.FileRoots) {
		update = append(update, arrow("file_roots", strings.Join(h.FileRoots, ", "), strings.Join(w.FileRoots, ", ")))
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
	if h.SLO != w.SLO {
		update = append(update, arrow("slo", showSLO(h.SLO), showSLO(w.SLO)))
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
	if c.Action == Update && h.ConfigHash == w.ConfigHash {
		w.Canary = h.Canary // the same worker keeps its canary's baseline
	}
	return c
}

// tokenRefused is the reason planned for a node whose hive answers but
// refuses rbee's token (state.NodeTokenRefused): apply reinstalls the hive
// with a fresh token.
const tokenRefused = "hive refused the token (401): rbee apply will reinstall the token"

// Package planner compares the desired fleet (config) with what rbee knows
// runs (state, optionally refreshed from the live hives) and produces an
// ordered plan of actions with reasons and dependencies, rendered for people
// or as NDJSON, and saved to plan files that apply can execute later.
package planner

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/state"
)

// Action is what a change does to one resource. The set is closed.
type Action int

// The actions, with the symbols plan output uses.
const (
	NoOp    Action = iota // nothing to do
	Create                // + create (install, provision, start)
	Update                // ~ update in place
	Replace               // -/+ delete, then create again
	Delete                // - delete (stop, remove)
)

var actionNames = [...]string{"no-op", "create", "update", "replace", "delete"}
var actionSymbols = [...]string{" ", "+", "~", "-/+", "-"}

// String is the action's name: no-op, create, update, replace, delete.
func (a Action) String() string {
	if a < 0 || int(a) >= len(actionNames) {
		return "invalid"
	}
	return actionNames[a]
}

// Symbol is the Terraform-like mark: +, ~, -/+, -.
func (a Action) Symbol() string {
	if a < 0 || int(a) >= len(actionSymbols) {
		return "?"
	}
	return actionSymbols[a]
}

// MarshalText writes the action's name.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// Counts is what one change of action a adds, changes and destroys; a
// replacement counts as one add and one destroy, as in Terraform.
func (a Action) Counts() (add, change, destroy int) {
	switch a {
	case Create:
		return 1, 0, 0
	case Update:
		return 0, 1, 0
	case Replace:
		return 1, 0, 1
	case Delete:
		return 0, 0, 1
	}
	return 0, 0, 0
}

// UnmarshalText reads an action's name.
func (a *Action) UnmarshalText(b []byte) error {
	i := slices.Index(actionNames[:], string(b))
	if i < 0 {
		return fmt.Errorf("unknown action %q", b)
	}
	*a = Action(i)
	return nil
}

// Change is one action on one resource. Before is the recorded state (nil for
// a resource that is not in state); After is the desired record (nil for a
// deletion). They are *state.NodeRecord, *state.ModelRecord or
// *state.WorkerRecord according to Addr.Kind, so a change can be executed
// without reading the configuration again.
type Change struct {
	Addr      state.Addr
	Action    Action
	Reasons   []string
	DependsOn []state.Addr // changes in the same plan that must finish first
	Before    state.Record
	After     state.Record
	// CreateBeforeDestroy marks a Replace whose new resource starts (and is
	// ready) before the old one drains and stops: a serving worker whose
	// port the hive picks. Shown as +/-.
	CreateBeforeDestroy bool
}

// Symbol is the change's mark in plan output: its action's, or +/- for a
// replacement that creates before it destroys.
func (c *Change) Symbol() string {
	if c.CreateBeforeDestroy {
		return "+/-"
	}
	return c.Action.Symbol()
}

// Plan is the result of planning: the changes to make, the drift found by
// refresh, and what the plan was made against (for stale checks).
type Plan struct {
	Lineage     string    // state lineage the plan was made against ("" = no state yet)
	Serial      uint64    // state serial the plan was made against
	ConfigHash  string    // config.Config.Hash() of the desired configuration
	Destroy     bool      // a -destroy plan
	RefreshOnly bool      // a -refresh-only plan: Drift only, no Changes
	Refreshed   bool      // the actual state was refreshed from the hives
	Targets     []string  // -target filters, as given
	Changes     []*Change // sorted: nodes, models, workers by name; follow DependsOn to execute
	Drift       []*Change // differences between the recorded and the refreshed state
	Warnings    []string
	// Resources are the fit check's lines: memory per node after apply and
	// each pool's decode ceiling (see package fit).
	Resources []string `json:",omitempty"`
	CreatedAt time.Time
	// Live is the refreshed state the plan was made against (nil without a
	// refresh). It is not saved in plan files.
	Live *state.Snapshot
}

// Counts returns how many resources the plan adds, changes and destroys; a
// replacement counts as one add and one destroy, as in Terraform.
func (p *Plan) Counts() (add, change, destroy int) {
	for _, c := range p.Changes {
		a, ch, d := c.Action.Counts()
		add, change, destroy = add+a, change+ch, destroy+d
	}
	return
}

// HasChanges reports whether applying the plan would do anything (for a
// refresh-only plan: whether drift was found). It decides exit code 2 of
// plan -detailed-exitcode.
func (p *Plan) HasChanges() bool {
	if p.RefreshOnly {
		return len(p.Drift) > 0
	}
	return len(p.Changes) > 0
}

// Summary is the "Plan: N to add, N to change, N to destroy." line.
func (p *Plan) Summary() string {
	add, change, destroy := p.Counts()
	return fmt.Sprintf("Plan: %d to add, %d to change, %d to destroy.", add, change, destroy)
}

// Change returns the change at addr, or nil.
func (p *Plan) Change(addr state.Addr) *Change {
	for _, c := range p.Changes {
		if c.Addr == addr {
			return c
		}
	}
	return nil
}

// Refresher reads the live state of the fleet. Refresh returns an updated
// copy of the snapshot (it must not change its argument): statuses, worker
// states, checksums; records of resources that vanished stay, marked
// missing/unreachable, so the plan can say why it recreates them.
type Refresher interface {
	Refresh(ctx context.Context, snap *state.Snapshot) (*state.Snapshot, error)
}

// Options select the kind of plan.
type Options struct {
	Destroy     bool      // plan deleting everything in state
	RefreshOnly bool      // only report drift between state and the live fleet
	Targets     []string  // limit to these addresses (and what they depend on); see MatchTarget
	Refresher   Refresher // nil: plan against the recorded state (no refresh)
	// BinarySHA256 returns the sha256 of the hive binary a node should run
	// (path "" = this rbee executable). Nil skips the binary comparison.
	BinarySHA256 func(path string) (string, error)
	Now          func() time.Time // clock for CreatedAt; nil = time.Now
	// Pin, when set, rewrites each desired model record to exactly what is
	// to be provisioned (the model lock's commit and sha256); an error fails
	// the plan. Nil provisions what the configuration says.
	Pin func(*state.ModelRecord) error
}

// Make compares desired with actual and returns the plan. (It would be
// called Plan, but that is the type's name.) desired may be nil only for a
// destroy or refresh-only plan; a nil actual is an empty state.
func Make(ctx context.Context, desired *config.Config, actual *state.Snapshot, opts Options) (*Plan, error) {
	if actual == nil {
		actual = state.NewSnapshot()
	}
	if desired == nil && !opts.Destroy && !opts.RefreshOnly {
		return nil, fmt.Errorf("planning needs a configuration (or -destroy)")
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	p := &Plan{Lineage: actual.Lineage, Serial: actual.Serial, Destroy: opts.Destroy, RefreshOnly: opts.RefreshOnly,
		Targets: slices.Clone(opts.Targets), CreatedAt: now().UTC()}
	if desired != nil {
		p.ConfigHash = desired.Hash()
	}
	for _, t := range opts.Targets {
		if _, err := parseTarget(t); err != nil {
			return nil, err
		}
	}
	live := actual
	if opts.Refresher != nil {
		r, err := opts.Refresher.Refresh(ctx, actual.Clone())
		if err != nil {
			return nil, fmt.Errorf("refreshing the live state: %w (use -refresh=false to plan against the recorded state)", err)
		}
		live, p.Refreshed, p.Live = r, true, r
		p.Drift = Drift(actual, live)
		p.Warnings = append(p.Warnings, canaryWarnings(live)...)
	}
	if opts.RefreshOnly {
		return p, nil
	}
	want := state.NewSnapshot()
	if !opts.Destroy {
		var err error
		if want, err = Desired(desired, opts.BinarySHA256); err != nil {
			return nil, err
		}
		if err = pinModels(want, opts.Pin); err != nil {
			return nil, err
		}
	}
	d := &differ{cfg: desired, want: want, have: live, destroy: opts.Destroy}
	p.Changes = d.diff()
	link(p.Changes)
	if len(opts.Targets) > 0 {
		var unmatched []string
		p.Changes, unmatched = filterTargets(p.Changes, opts.Targets)
		for _, t := range unmatched {
			p.Warnings = append(p.Warnings, fmt.Sprintf("-target %s matches no change", t))
		}
		p.Warnings = append(p.Warnings, "this plan is limited by -target: other changes are not shown and would not be applied")
	}
	rolling(p.Changes)
	return p, nil
}

// changeJSON is the wire form of a Change in NDJSON output and plan files.
type changeJSON struct {
	Type      string          `json:"type"` // "change" or "drift"
	Address   state.Addr      `json:"address"`
	Resource  state.Kind      `json:"resource"`
	Action    Action          `json:"action"`
	Symbol    string          `json:"symbol"`
	CBD       bool            `json:"create_before_destroy,omitempty"`
	Reasons   []string        `json:"reasons"`
	DependsOn []state.Addr    `json:"depends_on"`
	Before    json.RawMessage `json:"before"`
	After     json.RawMessage `json:"after"`
}

func (c *Change) wire(typ string) changeJSON {
	out := changeJSON{Type: typ, Address: c.Addr, Resource: c.Addr.Kind, Action: c.Action, Symbol: c.Symbol(),
		CBD: c.CreateBeforeDestroy, Reasons: c.Reasons, DependsOn: c.DependsOn, Before: rawRecord(c.Before), After: rawRecord(c.After)}
	if out.Reasons == nil {
		out.Reasons = []string{}
	}
	if out.DependsOn == nil {
		out.DependsOn = []state.Addr{}
	}
	return out
}

func rawRecord(r state.Record) json.RawMessage {
	if r == nil {
		return json.RawMessage("null")
	}
	b, err := json.Marshal(r)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

// MarshalJSON writes the change with its type "change".
func (c *Change) MarshalJSON() ([]byte, error) { return json.Marshal(c.wire("change")) }

// UnmarshalJSON reads a change written by MarshalJSON.
func (c *Change) UnmarshalJSON(b []byte) error {
	var w changeJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*c = Change{Addr: w.Address, Action: w.Action, Reasons: w.Reasons, DependsOn: w.DependsOn, CreateBeforeDestroy: w.CBD}
	var err error
	if c.Before, err = decodeRecord(w.Address.Kind, w.Before); err != nil {
		return err
	}
	c.After, err = decodeRecord(w.Address.Kind, w.After)
	return err
}

func decodeRecord(k state.Kind, raw json.RawMessage) (state.Record, error) {
	if len(raw) == 0 || strings.TrimSpace(string(raw)) == "null" {
		return nil, nil
	}
	return state.DecodeRecord(k, raw)
}

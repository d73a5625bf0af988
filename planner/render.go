package planner

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// RenderOptions tune human output.
type RenderOptions struct {
	Color bool // ANSI colours; the caller decides (a terminal, and NO_COLOR unset)
	// Recording is set by rbee refresh, which records the drift itself: a
	// refresh-only plan then does not tell to run rbee refresh.
	Recording bool
}

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiRed    = "\x1b[31m"
	ansiCyan   = "\x1b[36m"
)

func (a Action) color() string {
	switch a {
	case Create:
		return ansiGreen
	case Update:
		return ansiYellow
	case Replace:
		return ansiCyan
	case Delete:
		return ansiRed
	}
	return ""
}

var legend = map[Action]string{
	Create:  "create",
	Update:  "update in place",
	Replace: "replace (delete, then create)",
	Delete:  "delete",
}

// Render writes the plan for people: the drift refresh found, a legend of
// the symbols used, one line per change with its reasons, warnings, and the
// summary "Plan: N to add, N to change, N to destroy." (or "No changes. ...").
func Render(w io.Writer, p *Plan, opts RenderOptions) error {
	bw := bufio.NewWriter(w)
	paint := func(code, s string) string {
		if !opts.Color || code == "" {
			return s
		}
		return code + s + ansiReset
	}
	line := func(c *Change) {
		fmt.Fprintf(bw, "%s %s", paint(c.Action.color(), fmt.Sprintf("%3s", c.Symbol())), c.Addr)
		if len(c.Reasons) > 0 {
			fmt.Fprintf(bw, ": %s", strings.Join(c.Reasons, "; "))
		}
		fmt.Fprintln(bw)
	}
	if len(p.Drift) > 0 {
		fmt.Fprintln(bw, paint(ansiBold, "Objects have changed outside of rbee:"))
		fmt.Fprintln(bw)
		for _, c := range p.Drift {
			line(c)
		}
		fmt.Fprintln(bw)
	}
	switch {
	case p.RefreshOnly && len(p.Drift) == 0:
		if p.Refreshed {
			fmt.Fprintln(bw, "No changes. Nothing has changed outside of rbee.")
		} else {
			fmt.Fprintln(bw, "No changes. The state was not refreshed (no live refresh is available), so no drift can be reported.")
		}
	case p.RefreshOnly && opts.Recording:
		fmt.Fprintf(bw, "%d object(s) changed outside of rbee.\n", len(p.Drift))
	case p.RefreshOnly:
		fmt.Fprintf(bw, "Refresh-only plan: %d object(s) changed outside of rbee. Apply it with `rbee refresh` to record them.\n", len(p.Drift))
	case len(p.Changes) == 0:
		fmt.Fprintln(bw, "No changes. Your fleet matches the configuration.")
	default:
		used := map[Action]bool{}
		cbd := false
		for _, c := range p.Changes {
			used[c.Action] = used[c.Action] || !c.CreateBeforeDestroy
			cbd = cbd || c.CreateBeforeDestroy
		}
		fmt.Fprintln(bw, "Actions are shown with these symbols:")
		for _, a := range []Action{Create, Update, Replace, Delete} {
			if used[a] {
				fmt.Fprintf(bw, "  %s %s\n", paint(a.color(), fmt.Sprintf("%3s", a.Symbol())), legend[a])
			}
			if a == Replace && cbd {
				fmt.Fprintf(bw, "  %s %s\n", paint(a.color(), "+/-"), "create replacement, then drain and destroy the old one")
			}
		}
		fmt.Fprintln(bw)
		verb := "rbee will perform the following actions:"
		if p.Destroy {
			verb = "rbee will destroy everything it manages:"
		}
		fmt.Fprintln(bw, verb)
		fmt.Fprintln(bw)
		for _, c := range p.Changes {
			line(c)
		}
		fmt.Fprintln(bw)
		fmt.Fprintln(bw, paint(ansiBold, p.Summary()))
	}
	if len(p.Resources) > 0 {
		fmt.Fprintf(bw, "\nResources:\n  %s\n", strings.Join(p.Resources, "\n  "))
	}
	for _, warn := range p.Warnings {
		fmt.Fprintf(bw, "\n%s %s\n", paint(ansiYellow+ansiBold, "Warning:"), warn)
	}
	return bw.Flush()
}

// summaryJSON is the last NDJSON object of plan -json.
type summaryJSON struct {
	Type        string   `json:"type"` // "summary"
	Add         int      `json:"add"`
	Change      int      `json:"change"`
	Destroy     int      `json:"destroy"`
	Drift       int      `json:"drift"`
	Changes     bool     `json:"changes"` // what -detailed-exitcode reports as 2
	Mode        string   `json:"mode"`    // normal | destroy | refresh-only
	Refreshed   bool     `json:"refreshed"`
	Lineage     string   `json:"lineage"`
	Serial      uint64   `json:"serial"`
	ConfigHash  string   `json:"config_hash"`
	Targets     []string `json:"targets"`
	Warnings    []string `json:"warnings"`
	Description string   `json:"description"` // the human summary line
}

// RenderJSON writes the plan as NDJSON: one {"type":"drift",...} object per
// drifted resource, one {"type":"change",...} object per change (address,
// resource, action, symbol, reasons, depends_on, before, after), then one
// {"type":"summary",...} object.
func RenderJSON(w io.Writer, p *Plan) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, c := range p.Drift {
		if err := enc.Encode(c.wire("drift")); err != nil {
			return err
		}
	}
	for _, c := range p.Changes {
		if err := enc.Encode(c.wire("change")); err != nil {
			return err
		}
	}
	add, change, destroy := p.Counts()
	s := summaryJSON{Type: "summary", Add: add, Change: change, Destroy: destroy, Drift: len(p.Drift), Changes: p.HasChanges(),
		Mode: p.Mode(), Refreshed: p.Refreshed, Lineage: p.Lineage, Serial: p.Serial, ConfigHash: p.ConfigHash,
		Targets: p.Targets, Warnings: p.Warnings}
	if s.Targets == nil {
		s.Targets = []string{}
	}
	if s.Warnings == nil {
		s.Warnings = []string{}
	}
	switch {
	case p.RefreshOnly:
		s.Description = fmt.Sprintf("Refresh: %d object(s) changed outside of rbee.", len(p.Drift))
	case len(p.Changes) == 0:
		s.Description = "No changes. Your fleet matches the configuration."
	default:
		s.Description = p.Summary()
	}
	return enc.Encode(s)
}

// Mode names the kind of plan: normal, destroy or refresh-only.
func (p *Plan) Mode() string {
	switch {
	case p.RefreshOnly:
		return "refresh-only"
	case p.Destroy:
		return "destroy"
	}
	return "normal"
}

package status

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
)

// Columns of the table, in order.
var Columns = []string{"NODE", "HIVE", "WORKER", "STATE", "MODEL", "BACKEND", "SLOTS", "TOK/S", "RESTARTS"}

const (
	ansiReset  = "\x1b[0m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
)

// cell is one table cell and its colour ("" for none).
type cell struct{ text, color string }

// WriteJSON writes the report as one line of JSON.
func WriteJSON(w io.Writer, rep Report) error {
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteTable writes the report as a table, one row per worker (a node with
// none has one row), then a line for each problem: unreachable hives,
// workers that did not answer, the reason rates are missing. color adds
// ANSI colours to the states.
func WriteTable(w io.Writer, rep Report, color bool) error {
	rows := [][]cell{}
	var notes []string
	for _, n := range rep.Nodes {
		hive := cell{"v" + strings.TrimPrefix(n.Version, "v"), ansiGreen}
		if !n.Reachable {
			hive = cell{"unreachable", ansiRed}
			notes = append(notes, fmt.Sprintf("node.%s: the hive at %s did not answer: %s", n.Name, n.HiveURL, n.Error))
		}
		if len(n.Workers) == 0 {
			rows = append(rows, []cell{{text: n.Name}, hive, {text: "-"}, {}, {}, {}, {}, {}, {}})
		}
		for _, wk := range n.Workers {
			rows = append(rows, []cell{{text: n.Name}, hive, {text: wk.Address}, {wk.State, stateColor(wk.State)},
				{text: dash(wk.Model)}, {text: dash(wk.Backend)}, {text: slots(wk)},
				{text: rate(wk)}, {text: strconv.Itoa(wk.Restarts)}})
			if wk.Error != "" {
				notes = append(notes, fmt.Sprintf("%s: %s", wk.Address, wk.Error))
			}
		}
	}
	if len(rep.Nodes) == 0 {
		notes = append(notes, "the state records no node: run `rbee apply` first (or point --state at the fleet's state)")
	}
	if rep.RateNote != "" {
		notes = append(notes, rep.RateNote)
	}
	if gw := rep.Gateway; gw != nil {
		notes = append(notes, gatewayLine(gw))
	}
	header := make([]cell, len(Columns))
	for i, c := range Columns {
		header[i] = cell{text: c}
	}
	var b strings.Builder
	writeRows(&b, append([][]cell{header}, rows...), color)
	for _, n := range notes {
		b.WriteString(n + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeRows pads every column to its widest cell, colouring after padding
// so that escape codes do not shift the columns.
func writeRows(b *strings.Builder, rows [][]cell, color bool) {
	widths := make([]int, len(Columns))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c.text))
		}
	}
	for _, r := range rows {
		var line strings.Builder
		for i, c := range r {
			text := c.text
			if i < len(r)-1 {
				text += strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c.text)+2)
			}
			if color && c.color != "" {
				text = c.color + c.text + ansiReset + text[len(c.text):]
			}
			line.WriteString(text)
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
}

func stateColor(s string) string {
	switch {
	case hiveapi.Ready(s):
		return ansiGreen
	case s == hiveapi.StateFailed || s == StateUnknown || s == StateMissing:
		return ansiRed
	}
	return ansiYellow
}

// slots is "busy/total", with "-" for busy when nothing answered for the worker.
func slots(w Worker) string {
	if w.State == StateUnknown || w.State == StateMissing {
		return fmt.Sprintf("-/%d", w.SlotsTotal)
	}
	return fmt.Sprintf("%d/%d", w.SlotsBusy, w.SlotsTotal)
}

func rate(w Worker) string {
	if w.TokensPerSecond == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", *w.TokensPerSecond)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// gatewayLine is the gateway's line under the table: its queues, or why it
// did not answer.
func gatewayLine(gw *Gateway) string {
	if !gw.Reachable {
		return fmt.Sprintf("gateway %s: unreachable: %s", gw.URL, gw.Error)
	}
	names := make([]string, 0, len(gw.QueueDepth))
	for n := range gw.QueueDepth {
		names = append(names, n)
	}
	sort.Strings(names)
	queues := make([]string, len(names))
	for i, n := range names {
		queues[i] = fmt.Sprintf("%s %g", n, gw.QueueDepth[n])
	}
	if len(queues) == 0 {
		return fmt.Sprintf("gateway %s: no request queued", gw.URL)
	}
	return fmt.Sprintf("gateway %s: queued requests: %s", gw.URL, strings.Join(queues, ", "))
}

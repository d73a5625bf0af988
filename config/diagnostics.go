package config

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Diagnostics are the problems found while loading a configuration, with the
// source text needed to show each one in context.
type Diagnostics struct {
	Diags   hcl.Diagnostics
	Sources map[string][]byte // file name → content
}

// HasErrors reports whether any diagnostic is an error (warnings do not count).
func (d Diagnostics) HasErrors() bool { return d.Diags.HasErrors() }

// Errors counts the error diagnostics.
func (d Diagnostics) Errors() int { return d.count(hcl.DiagError) }

// Warnings counts the warning diagnostics.
func (d Diagnostics) Warnings() int { return d.count(hcl.DiagWarning) }

func (d Diagnostics) count(sev hcl.DiagnosticSeverity) int {
	n := 0
	for _, x := range d.Diags {
		if x.Severity == sev {
			n++
		}
	}
	return n
}

// Err summarises the errors as one Go error, or returns nil when there are none.
func (d Diagnostics) Err() error {
	n := d.Errors()
	switch n {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("the configuration has 1 error")
	}
	return fmt.Errorf("the configuration has %d errors", n)
}

// Write prints every diagnostic like this, errors first, colouring only when color is true:
//
//	Error: rbee.hcl:12:14: Unknown model
//
//	  12 |   model = "tinyllam"
//	     |           ^^^^^^^^^^
//
//	pool "chat" uses model "tinyllam", which is not declared. Did you mean "tinyllama"? ...
func (d Diagnostics) Write(w io.Writer, color bool) error {
	bw := bufio.NewWriter(w)
	for _, sev := range []hcl.DiagnosticSeverity{hcl.DiagError, hcl.DiagWarning} {
		for _, x := range d.Diags {
			if x.Severity == sev {
				d.writeOne(bw, x, color)
			}
		}
	}
	return bw.Flush()
}

func (d Diagnostics) writeOne(w *bufio.Writer, x *hcl.Diagnostic, color bool) {
	label, on, off := "Error", "\x1b[1;31m", "\x1b[0m"
	if x.Severity == hcl.DiagWarning {
		label, on = "Warning", "\x1b[1;33m"
	}
	if !color {
		on, off = "", ""
	}
	where := ""
	if x.Subject != nil {
		where = fmt.Sprintf("%s:%d:%d: ", x.Subject.Filename, x.Subject.Start.Line, x.Subject.Start.Column)
	}
	fmt.Fprintf(w, "%s%s:%s %s%s\n", on, label, off, where, x.Summary)
	if x.Subject != nil {
		if line, ok := sourceLine(d.Sources[x.Subject.Filename], x.Subject.Start.Line); ok {
			num := fmt.Sprintf("%d", x.Subject.Start.Line)
			pad := strings.Repeat(" ", len(num))
			line, start := window(line, x.Subject.Start.Column-1)
			fmt.Fprintf(w, "\n  %s | %s\n", num, strings.ReplaceAll(line, "\t", " "))
			width := x.Subject.End.Column - x.Subject.Start.Column
			if x.Subject.End.Line != x.Subject.Start.Line || width < 1 {
				width = 1
			}
			if start >= 0 && start <= len(line) {
				width = min(width, max(len(line)-start, 1))
				fmt.Fprintf(w, "  %s | %s%s%s%s\n", pad, strings.Repeat(" ", start), on, strings.Repeat("^", width), off)
			}
		}
	}
	if x.Detail != "" {
		fmt.Fprintf(w, "\n%s\n", x.Detail)
	}
	fmt.Fprintln(w)
}

// sourceLine returns line n (1-based) of src without its newline.
func sourceLine(src []byte, n int) (string, bool) {
	if src == nil || n < 1 {
		return "", false
	}
	for i := 1; ; i++ {
		line, rest, found := bytes.Cut(src, []byte("\n"))
		if i == n {
			return strings.TrimRight(string(line), "\r"), true
		}
		if !found {
			return "", false
		}
		src = rest
	}
}

// window cuts a line longer than 160 bytes to the 160 around column start
// (0-based), marking each cut with "...", and returns the column in the cut.
func window(line string, start int) (string, int) {
	const width, before = 160, 60
	if len(line) <= width || start < 0 || start > len(line) {
		return line, start
	}
	from := max(0, min(start-before, len(line)-width))
	out := line[from:min(from+width, len(line))]
	if from+width < len(line) {
		out += "..."
	}
	if from > 0 {
		out, start = "..."+out, start-from+3
	}
	return out, start
}

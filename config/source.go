package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

// MaxConfigBytes is the most a configuration may hold: every .hcl file of it
// and every -var-file together. A fleet of 10,000 SSH nodes in three pools
// takes about 1 MiB; the bound keeps the loader's memory bounded whatever
// the input (the parser needs a few hundred bytes of memory per byte).
const MaxConfigBytes = 2 << 20

// errTooLarge is returned by readSource for a file over its budget.
var errTooLarge = errors.New("too large")

// ReadSource reads one configuration file the way Load does: a regular file
// of at most MaxConfigBytes, refused with a diagnostic otherwise. Commands
// that read a file themselves (fmt) use it so that no input, such as
// /dev/zero or a FIFO, can make them hang or run out of memory.
func ReadSource(path string) ([]byte, Diagnostics) {
	b, diag := readSource(path, MaxConfigBytes)
	if diag != nil {
		return nil, Diagnostics{Diags: hcl.Diagnostics{diag}}
	}
	return b, Diagnostics{}
}

// readSource reads the file at path, at most budget bytes of it: a file that
// is larger, or that is not a regular file (a device, a pipe), is refused
// before it is read into memory.
func readSource(path string, budget int) ([]byte, *hcl.Diagnostic) {
	// Stat before opening: opening a FIFO would wait for a writer.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read configuration", Detail: err.Error()}
	}
	if !fi.Mode().IsRegular() {
		return nil, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Not a regular file", Subject: fileStart(path),
			Detail: fmt.Sprintf("%s is not a regular file (%s); point --config or -var-file at an HCL text file or a folder of them.", path, fi.Mode().Type())}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read configuration", Detail: err.Error()}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(budget)+1))
	if err != nil {
		return nil, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read configuration", Detail: fmt.Sprintf("%s: %v", path, err)}
	}
	if len(b) > budget {
		return nil, tooLarge(path, max(fi.Size(), int64(len(b))), budget)
	}
	return b, nil
}

func tooLarge(name string, size int64, budget int) *hcl.Diagnostic {
	left := ""
	if budget < MaxConfigBytes {
		left = fmt.Sprintf(" (the files read before it left %s)", byteSize(int64(budget)))
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Configuration too large", Subject: fileStart(name),
		Detail: fmt.Sprintf("%s is %d bytes; a configuration may hold at most %d (%s) in all its files and -var-file files together%s. "+
			"A fleet of 10,000 nodes takes about 1 MiB: remove what is not needed, or use locals and variables to say a value once.",
			name, size, MaxConfigBytes, byteSize(MaxConfigBytes), left)}
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

func fileStart(name string) *hcl.Range {
	return &hcl.Range{Filename: name, Start: hcl.InitialPos, End: hcl.Pos{Line: 1, Column: 1, Byte: 0}}
}

// prepareSource checks one file before it is parsed and returns the text to
// parse. It charges the file's size to *budget, refuses text that would read
// as something it is not (UTF-16, NUL bytes) and input that would make the
// parser recurse without bound (see checkNesting), and turns lone CR line
// endings into LF so that the file has the lines an editor shows: HCL reads
// only LF and CRLF as line ends, so an old-Mac file would be one long line,
// and after a comment on its first line, nothing at all.
func prepareSource(name string, src []byte, budget *int) ([]byte, hcl.Diagnostics) {
	if len(src) > *budget {
		return nil, hcl.Diagnostics{tooLarge(name, int64(len(src)), *budget)}
	}
	*budget -= len(src)
	if d := checkEncoding(name, src); d != nil {
		return nil, hcl.Diagnostics{d}
	}
	var diags hcl.Diagnostics
	if norm, n := normalizeCR(src); n > 0 {
		src = norm
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Old Mac line endings", Subject: fileStart(name),
			Detail: fmt.Sprintf("%s ends %d line(s) with a lone CR, which rbee reads as a line end; other HCL tools (terraform, hclfmt) read such a file as one line. Run rbee fmt to rewrite it with LF line endings.", name, n)})
	}
	if d := checkNesting(name, src); d != nil {
		return nil, append(diags, d)
	}
	return src, diags
}

// checkEncoding refuses a file that is not UTF-8 text in a way that would
// otherwise parse as nothing or as noise: UTF-16 or UTF-32 (with or without
// a byte order mark) and any NUL byte. A UTF-8 byte order mark is fine.
func checkEncoding(name string, src []byte) *hcl.Diagnostic {
	const fix = "rbee reads UTF-8 text: save the file as UTF-8 (in most editors: \"Save with encoding\" → UTF-8), or convert it with iconv -f UTF-16 -t UTF-8."
	if bytes.HasPrefix(src, []byte{0xFF, 0xFE}) || bytes.HasPrefix(src, []byte{0xFE, 0xFF}) || bytes.HasPrefix(src, []byte{0, 0, 0xFE, 0xFF}) {
		return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "File is UTF-16 or UTF-32", Subject: fileStart(name),
			Detail: fmt.Sprintf("%s starts with a UTF-16 or UTF-32 byte order mark. %s", name, fix)}
	}
	i := bytes.IndexByte(src, 0)
	if i < 0 {
		return nil
	}
	at := posAt(src, i)
	if looksUTF16(src) {
		return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "File is UTF-16 or UTF-32", Subject: &hcl.Range{Filename: name, Start: at, End: at},
			Detail: fmt.Sprintf("%s has NUL bytes between its characters, as UTF-16 or UTF-32 text without a byte order mark does. %s", name, fix)}
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "NUL byte in the configuration", Subject: &hcl.Range{Filename: name, Start: at, End: at},
		Detail: fmt.Sprintf("%s contains a NUL byte at line %d, column %d: it is a binary file or not UTF-8 text. %s", name, at.Line, at.Column, fix)}
}

// looksUTF16 reports whether NUL bytes make up at least a quarter of the
// first 512 bytes, as they do in ASCII text stored as UTF-16 or UTF-32.
func looksUTF16(src []byte) bool {
	head := src[:min(len(src), 512)]
	return bytes.Count(head, []byte{0})*4 >= len(head)
}

// posAt is the line and column (in characters) of byte offset off.
func posAt(src []byte, off int) hcl.Pos {
	line := 1 + bytes.Count(src[:off], []byte("\n"))
	start := bytes.LastIndexByte(src[:off], '\n') + 1
	return hcl.Pos{Line: line, Column: 1 + utf8.RuneCount(src[start:off]), Byte: off}
}

// normalizeCR replaces each CR that is not followed by LF with LF, keeping
// CRLF as it is, and says how many it replaced.
func normalizeCR(src []byte) ([]byte, int) {
	n := 0
	for i, c := range src {
		if c == '\r' && (i+1 == len(src) || src[i+1] != '\n') {
			n++
		}
	}
	if n == 0 {
		return src, 0
	}
	out := bytes.Clone(src)
	for i, c := range out {
		if c == '\r' && (i+1 == len(out) || out[i+1] != '\n') {
			out[i] = '\n'
		}
	}
	return out, n
}

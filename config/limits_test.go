package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// diagAt returns the rendered diagnostic whose header is exactly want (like
// "Error: rbee.hcl:2:10: Invalid host"), or "" with every header.
func diagAt(diags Diagnostics, want string) (string, string) {
	var heads []string
	for _, x := range diags.Diags {
		one := render(Diagnostics{Diags: hcl.Diagnostics{x}, Sources: diags.Sources})
		head, _, _ := strings.Cut(one, "\n")
		if head == want {
			return one, ""
		}
		heads = append(heads, head)
	}
	return "", strings.Join(heads, "\n")
}

// expectDiag fails unless diags has the diagnostic want whose text contains detail.
func expectDiag(t *testing.T, diags Diagnostics, want, detail string) {
	t.Helper()
	one, others := diagAt(diags, want)
	if one == "" {
		t.Fatalf("no %q; the diagnostics are:\n%s", want, others)
	}
	if !strings.Contains(one, detail) {
		t.Fatalf("%q does not say %q:\n%s", want, detail, one)
	}
}

func nested(open, mid, close string, n int) string {
	return strings.Repeat(open, n) + mid + strings.Repeat(close, n)
}

// TestHostileShapes: input that would make HCL's parser or evaluator recurse
// without bound (a stack overflow kills the process, recover cannot catch
// it) is refused before parsing, at the place where it passes the bound.
func TestHostileShapes(t *testing.T) {
	const n = 70000 // 140 KB of brackets overflowed the stack before the bound
	cases := []struct{ name, src, want, detail string }{
		{"brackets", "locals { x = " + nested("[", "", "]", n) + " }", "Error: rbee.hcl:1:113: Nested too deeply", "at most 100 levels"},
		{"parentheses", "locals { x = " + nested("(", "1", ")", n) + " }", "Error: rbee.hcl:1:113: Nested too deeply", "at most 100 levels"},
		{"objects", "locals { x = " + nested("{a=", "1", "}", n) + " }", "Error: rbee.hcl:1:311: Nested too deeply", "at most 100 levels"},
		{"blocks", "node \"a\" " + nested("{ b ", "", "}", n), "Error: rbee.hcl:1:410: Nested too deeply", "brackets, braces, parentheses"},
		{"calls", "locals { x = " + nested("lower(", `"a"`, ")", n) + " }", "Error: rbee.hcl:1:613: Nested too deeply", "at most 100 levels"},
		{"templates", "locals { x = " + nested(`"${`, "1", `}"`, n) + " }", "Error: rbee.hcl:1:162: Nested too deeply", "strings and templates"},
		{"directives", "locals { x = \"" + nested("%{if true}", "", "%{endif}", n) + "\" }", "Error: rbee.hcl:1:985: Nested too deeply", "at most 100 levels"},
		{"lines", "locals {\n x = " + nested("[\n", "", "]\n", n) + " }", "Error: rbee.hcl:101:1: Nested too deeply", "at most 100 levels"},
		{"not", "locals { x = " + strings.Repeat("!", n) + "true }", "Error: rbee.hcl:1:1014: Expression too long", "at most 1000 operators"},
		{"minus", "locals { x = " + strings.Repeat("- ", n) + "1 }", "Error: rbee.hcl:1:2014: Expression too long", "Split it into locals"},
		{"plus", "locals { x = 1" + strings.Repeat("+1", n) + " }", "Error: rbee.hcl:1:2015: Expression too long", "at most 1000 operators"},
		{"conditionals", "locals { x = " + strings.Repeat("true ? 1 : ", n) + "1 }", "Error: rbee.hcl:1:11019: Expression too long", "at most 1000 operators"},
		{"indexes", "locals { x = [[1]]" + strings.Repeat("[0]", n) + " }", "Error: rbee.hcl:1:3019: Expression too long", "at most 1000 operators"},
		{"operators inside brackets", "locals { x = " + strings.Repeat("1+(", 90) + "1" + strings.Repeat("+1", 950) + strings.Repeat(")", 90) + " }", "Error: rbee.hcl:1:2105: Expression too long", "counting those of the expressions it is inside"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, diags := parse(t, c.src, LoadOptions{})
			if cfg != nil {
				t.Fatal("loaded")
			}
			expectDiag(t, diags, c.want, c.detail)
		})
	}
}

// TestShapesWithinBounds: what real files do stays valid, up to the bounds.
func TestShapesWithinBounds(t *testing.T) {
	for name, src := range map[string]string{
		"99 brackets":           "locals { x = " + nested("[", "", "]", 99) + " }",
		"1000 plus":             "locals { x = 1" + strings.Repeat("+1", 999) + " }",
		"long list":             "locals { x = [" + strings.Repeat("1+1, ", 5000) + "] }",
		"brackets in a string":  `locals { x = "` + strings.Repeat("[({", 500) + `" }`,
		"brackets in comments":  "# " + strings.Repeat("[", 500) + "\n/* " + strings.Repeat("(", 500) + " */\nlocals {}",
		"heredoc":               "locals {\n  x = <<EOT\n" + strings.Repeat("[{(", 500) + "\nEOT\n}",
		"escaped interpolation": `locals { x = "` + strings.Repeat("$${", 500) + `" }`,
	} {
		t.Run(name, func(t *testing.T) {
			_, diags := parse(t, src+"\nnode \"local\" { connection = \"local\" }\n", LoadOptions{})
			if diags.HasErrors() {
				t.Fatal(render(diags))
			}
		})
	}
}

// TestLineEndingsAndEncodings: a file never silently reads as less than it
// says. Lone CR line ends are line ends (with the right line numbers), and
// text that is not UTF-8 is refused with a diagnostic saying how to fix it.
func TestLineEndingsAndEncodings(t *testing.T) {
	const fleet = "# the fleet\nnode \"local\" {\n  connection = \"local\"\n  hive_port  = 80\n}\n"
	utf16 := func(s string, bom bool) string {
		var b []byte
		if bom {
			b = []byte{0xFF, 0xFE}
		}
		for _, c := range []byte(s) {
			b = append(b, c, 0)
		}
		return string(b)
	}
	cases := []struct{ name, src, want, detail string }{
		{"CR only", strings.ReplaceAll(fleet, "\n", "\r"), "Error: rbee.hcl:4:16: Invalid port", "allowed: 1024-65535"},
		{"CR only warns", strings.ReplaceAll(fleet, "\n", "\r"), "Warning: rbee.hcl:1:1: Old Mac line endings", "Run rbee fmt"},
		{"CRLF", strings.ReplaceAll(fleet, "\n", "\r\n"), "Error: rbee.hcl:4:16: Invalid port", "allowed: 1024-65535"},
		{"mixed", "# a\r\nnode \"local\" {\r  connection = \"local\"\n  hive_port = 80\r\n}", "Error: rbee.hcl:4:15: Invalid port", "allowed"},
		{"UTF-8 BOM", "\xEF\xBB\xBF" + fleet, "Error: rbee.hcl:4:16: Invalid port", "allowed"},
		{"UTF-16 with BOM", utf16(fleet, true), "Error: rbee.hcl:1:1: File is UTF-16 or UTF-32", "save the file as UTF-8"},
		{"UTF-16 without BOM", utf16(fleet, false), "Error: rbee.hcl:1:2: File is UTF-16 or UTF-32", "without a byte order mark"},
		{"UTF-16 big endian", "\xFE\xFF" + utf16(fleet, false), "Error: rbee.hcl:1:1: File is UTF-16 or UTF-32", "iconv"},
		{"NUL byte", "node \"local\" {\n  connection = \"local\"\x00\n}\n", "Error: rbee.hcl:2:23: NUL byte in the configuration", "line 2, column 23"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, diags := parse(t, c.src, LoadOptions{})
			expectDiag(t, diags, c.want, c.detail)
		})
	}
	t.Run("CRLF does not warn", func(t *testing.T) {
		_, diags := parse(t, "node \"local\" {\r\n  connection = \"local\"\r\n}\r\n", LoadOptions{})
		if diags.HasErrors() || diags.Warnings() != 0 {
			t.Fatal(render(diags))
		}
	})
	t.Run("CR only after a comment is the whole fleet", func(t *testing.T) {
		cfg, diags := parse(t, "# fleet\rnode \"local\" {\r  connection = \"local\"\r}\r", LoadOptions{})
		if cfg == nil || len(cfg.Nodes) != 1 || cfg.Nodes[0].Connection != ConnectionLocal {
			t.Fatalf("config %+v\n%s", cfg, render(diags))
		}
	})
}

func TestEmptyConfigurationWarns(t *testing.T) {
	for name, src := range map[string]string{"empty": "", "comments only": "# node \"a\" {}\n// nothing\n", "variables only": `variable "x" { default = 1 }`} {
		t.Run(name, func(t *testing.T) {
			cfg, diags := parse(t, src, LoadOptions{})
			if cfg == nil {
				t.Fatal(render(diags))
			}
			expectDiag(t, diags, "Warning: rbee.hcl:1:1: Empty configuration", "remove everything recorded in state")
		})
	}
}

// TestFileSize: a configuration over MaxConfigBytes, in one file or in all
// files and variable files together, is refused before it is parsed; Load
// reads no more of a file than that, and reads only regular files.
func TestFileSize(t *testing.T) {
	big := "# " + strings.Repeat("x", MaxConfigBytes) + "\n"
	t.Run("one file", func(t *testing.T) {
		_, diags := parse(t, big, LoadOptions{})
		expectDiag(t, diags, "Error: rbee.hcl:1:1: Configuration too large", "at most 2097152 (2.0 MiB)")
	})
	dir := t.TempDir()
	half := "# " + strings.Repeat("x", MaxConfigBytes/2) + "\n"
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("folder", func(t *testing.T) {
		_ = os.MkdirAll(filepath.Join(dir, "fleet"), 0o755)
		write("fleet/a.hcl", half+`node "local" { connection = "local" }`)
		write("fleet/b.hcl", half)
		_, diags := Load(filepath.Join(dir, "fleet"), LoadOptions{Environ: []string{}})
		expectDiag(t, diags, "Error: "+filepath.Join(dir, "fleet", "b.hcl")+":1:1: Configuration too large", "the files read before it left")
	})
	t.Run("var file", func(t *testing.T) {
		cfgPath := write("rbee.hcl", half+`node "local" { connection = "local" }`)
		varPath := write("big.tfvars", half)
		_, diags := Load(cfgPath, LoadOptions{Environ: []string{}, VarFiles: []string{varPath}})
		expectDiag(t, diags, "Error: "+varPath+":1:1: Configuration too large", "-var-file files together")
	})
	t.Run("not a regular file", func(t *testing.T) {
		fifo := filepath.Join(dir, "fifo.hcl")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Skip("no FIFO here:", err)
		}
		_, diags := Load(fifo, LoadOptions{Environ: []string{}})
		expectDiag(t, diags, "Error: "+fifo+":1:1: Not a regular file", "not a regular file")
		_, diags = ReadSource(fifo)
		expectDiag(t, diags, "Error: "+fifo+":1:1: Not a regular file", "not a regular file")
		_, diags = ReadSource("/dev/zero")
		expectDiag(t, diags, "Error: /dev/zero:1:1: Not a regular file", "not a regular file")
	})
}

// TestValueLimits: each value has the limit of what it ends up in, reported
// at its line with the limit named.
func TestValueLimits(t *testing.T) {
	dir := t.TempDir()
	mb := strings.Repeat("a", 1<<20)
	node := func(attrs string) string { return "node \"n\" {\n  host = \"10.0.0.1\"\n" + attrs + "\n}\n" }
	cases := []struct{ name, src, want, detail string }{
		{"1 MB host", "node \"n\" {\n  host = \"" + mb + "\"\n}", "Error: rbee.hcl:2:10: Invalid host", "a DNS name has at most 253"},
		{"300-character label", "node \"n\" {\n  host = \"" + strings.Repeat("a", 300) + ".com\"\n}", "Error: rbee.hcl:2:10: Invalid host", "at most 253"},
		{"64-character label", "node \"n\" {\n  host = \"" + strings.Repeat("a", 64) + ".example.com\"\n}", "Error: rbee.hcl:2:10: Invalid host", "label of 64 characters"},
		{"empty label", "node \"n\" {\n  host = \"a..b\"\n}", "Error: rbee.hcl:2:10: Invalid host", "labels of letters, digits and dashes"},
		{"5000-character user", node("  user = \"" + strings.Repeat("u", 5000) + "\""), "Error: rbee.hcl:3:10: Invalid user", "a POSIX login name has at most 32"},
		{"33-character user", node("  user = \"" + strings.Repeat("u", 33) + "\""), "Error: rbee.hcl:3:10: Invalid user", "at most 32"},
		{"1 MB install_dir", node("  install_dir = \"/" + mb + "\""), "Error: rbee.hcl:3:17: Invalid install_dir", "a path has at most 4096"},
		{"long identity", node("  identity = \"/" + strings.Repeat("k", 5000) + "\""), "Error: rbee.hcl:3:14: Path too long", "at most 4096"},
		{"long env key", node("  env = {\n    " + strings.Repeat("K", 300) + " = \"v\"\n  }"), "Error: rbee.hcl:4:5: Invalid environment variable name", "at most 256"},
		{"1 MB env key", node("  env = {\n    " + strings.Repeat("K", 1<<20) + " = \"v\"\n  }"), "Error: rbee.hcl:4:5: Invalid environment variable name", "at most 256"},
		{"env key not POSIX", node("  env = {\n    A = \"v\"\n    \"1X\" = \"v\"\n  }"), "Error: rbee.hcl:5:5: Invalid environment variable name", "not starting with a digit"},
		{"200 KB env value", node("  env = {\n    A = \"x\"\n    BIG = \"" + strings.Repeat("v", 200<<10) + "\"\n  }"), "Error: rbee.hcl:5:5: Environment value too long", "at most 32.0 KiB per value"},
		{"1 MB env value", node("  env = { BIG = \"" + mb + "\" }"), "Error: rbee.hcl:3:11: Environment value too long", "at most 32.0 KiB"},
		{"env in all", node("  env = {\n" + envOf(5, 30<<10) + "  }"), "Error: rbee.hcl:3:9: Environment too large", "at most 128.0 KiB in all"},
		{"64-character name", "node \"" + strings.Repeat("n", 64) + "\" { connection = \"local\" }", "Error: rbee.hcl:1:6: Invalid node name", "use 1-63 lowercase"},
		{"long source", "model \"m\" { source = \"https://h/" + strings.Repeat("p", 5000) + "\" }", "Error: rbee.hcl:1:22: Value too long", "allowed: at most 4096"},
		{"long revision", "model \"m\" {\n  source = \"hf:a/b\"\n  file = \"m.gguf\"\n  revision = \"" + strings.Repeat("r", 300) + "\"\n}", "Error: rbee.hcl:4:14: Value too long", "at most 255"},
		{"long sha256", "model \"m\" {\n  source = \"synth:t\"\n  sha256 = \"" + mb + "\"\n}", "Error: rbee.hcl:3:12: Value too long", "at most 64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, diags := parse(t, c.src, LoadOptions{Environ: []string{"HOME=" + dir}})
			expectDiag(t, diags, c.want, c.detail)
			if out := render(diags); len(out) > 64<<10 {
				t.Fatalf("the diagnostics are %d bytes: a long value is not clipped", len(out))
			}
		})
	}
}

func envOf(n, size int) string {
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, "    K%d = %q\n", i, strings.Repeat("v", size))
	}
	return sb.String()
}

// TestValuesAtTheirLimits are accepted.
func TestValuesAtTheirLimits(t *testing.T) {
	label := strings.Repeat("a", 63)
	host := strings.Join([]string{label, label, label, strings.Repeat("b", 61)}, ".") // 253
	src := "node \"" + strings.Repeat("n", 63) + "\" {\n  host = \"" + host + "\"\n  user = \"" + strings.Repeat("u", 32) + "\"\n" +
		"  install_dir = \"/" + strings.Repeat("d", 4095) + "\"\n  env = {\n" + envOf(4, 32<<10-8) + "  }\n}\n"
	_, diags := parse(t, src, LoadOptions{})
	if diags.HasErrors() {
		t.Fatal(render(diags))
	}
}

func TestLongLinesAreCutInDiagnostics(t *testing.T) {
	src := "locals { x = [" + strings.Repeat("1, ", 10000) + "nope] }\nnode \"local\" { connection = \"local\" }"
	_, diags := parse(t, src, LoadOptions{})
	out := render(diags)
	if !strings.Contains(out, "Error: rbee.hcl:1:30015:") || !strings.Contains(out, "...1, 1, 1") || len(out) > 2000 {
		t.Fatalf("%d bytes:\n%s", len(out), out)
	}
	if !strings.Contains(out, "nope] }\n") {
		t.Fatalf("the cut does not show the place:\n%s", out)
	}
}

// TestHostileVariableValues: -var and RBEE_VAR_ values of a typed variable
// are parsed as HCL too, under the same bounds.
func TestHostileVariableValues(t *testing.T) {
	src := "variable \"x\" { default = [] }\n" + localFleet
	deep := strings.Repeat("[", 60000) + strings.Repeat("]", 60000)
	for name, opts := range map[string]LoadOptions{
		"-var":      {Vars: []string{"x=" + deep}},
		"RBEE_VAR_": {Environ: []string{"RBEE_VAR_x=" + deep}},
	} {
		t.Run(name, func(t *testing.T) {
			_, diags := parse(t, src, opts)
			out := render(diags)
			if !strings.Contains(out, "Error: Invalid variable value") || !strings.Contains(out, "Nested too deeply") || len(out) > 4096 {
				t.Fatalf("%d bytes:\n%.2000s", len(out), out)
			}
		})
	}
}

// TestEvaluationIsBounded: a short file cannot make the loader compute more
// than it can hold: locals that double each other stop at MaxValueBytes,
// for expressions (whose cost multiplies) are refused, and locals cannot
// build a value nested deeper than MaxNesting through each other.
func TestEvaluationIsBounded(t *testing.T) {
	var doubling, chain strings.Builder
	doubling.WriteString("locals {\n  s0 = \"" + strings.Repeat("x", 1000) + "\"\n")
	for i := 1; i <= 60; i++ {
		fmt.Fprintf(&doubling, "  s%d = \"${local.s%d}${local.s%d}\"\n", i, i-1, i-1)
	}
	doubling.WriteString("}\n")
	chain.WriteString("locals {\n  l0 = 1\n")
	for i := 1; i <= 5000; i++ {
		fmt.Fprintf(&chain, "  l%d = [local.l%d]\n", i, i-1)
	}
	chain.WriteString("}\n")
	cases := []struct{ name, src, want, detail string }{
		{"doubling strings", doubling.String(), "Error: rbee.hcl:11:8: Value too large", "local.s9 is more than 256.0 KiB"},
		{"for expression", "locals {\n  a = [1, 2]\n  b = [for x in local.a : [for y in local.a : y]]\n}", "Error: rbee.hcl:3:8: Unsupported for expression", "no for expressions"},
		{"for object", "locals {\n  b = { for k, v in {a = 1} : k => v }\n}", "Error: rbee.hcl:2:9: Unsupported for expression", "name them once in locals"},
		{"for directive", "locals {\n  b = \"%{ for x in [1] }${x}%{ endfor }\"\n}", "Error: rbee.hcl:2:11: Unsupported for expression", "directives"},
		{"interpolations", "locals {\n  s = \"x\"\n  b = \"" + strings.Repeat("${local.s}", 1001) + "\"\n}", "Error: rbee.hcl:3:10008: Expression too long", "operators and ${} interpolations"},
		{"nested through locals", chain.String(), "Error: rbee.hcl:103:10: Value too large", "nests more than 100 levels deep"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, diags := parse(t, c.src+localFleet, LoadOptions{})
			expectDiag(t, diags, c.want, c.detail)
			if n := diags.Errors(); n != 1 {
				t.Fatalf("%d errors, want 1:\n%.3000s", n, render(diags))
			}
		})
	}
}

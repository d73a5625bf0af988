// Package promcheck runs Prometheus's own linter, `promtool check metrics`,
// on a /metrics body in tests, so every exposition rbee serves is checked by
// the tool operators use.
package promcheck

import (
	"bytes"
	"os/exec"
	"testing"
)

// Check fails t when promtool reports anything about body. It skips the
// test, saying how to install promtool, when promtool is not on the PATH.
func Check(t testing.TB, body []byte) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus; just deps installs it)")
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s\nmetrics:\n%s", err, out, body)
	}
}

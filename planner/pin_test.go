package planner

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rbee-dev/rbee/state"
)

// TestPin checks the hook a model lock plugs into: the pinned record is
// what is planned, a file on a node with another sha256 is replaced, and a
// pin that fails fails the plan.
func TestPin(t *testing.T) {
	cfg := load(t, base)
	locked := strings.Repeat("c", 64)
	pin := func(r *state.ModelRecord) error { r.SHA256 = locked; return nil }
	tests := []struct {
		name       string
		recorded   string // the pin the state recorded
		actual     string // sha256 of the file on the nodes
		wantAction Action
		wantReason string
	}{
		{"first plan with the lock, the node has the locked file", "", locked, Update, "sha256"},
		{"first plan with the lock, the node has another file", "", strings.Repeat("b", 64), Replace, "the file on the node is bbbbbbbbbbbb"},
		{"locked before, the file on the node changed: drift", locked, strings.Repeat("b", 64), Replace, "differs from the pin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			have := applied(t, cfg)
			for _, m := range have.Models {
				m.SHA256, m.ActualSHA256 = tc.recorded, tc.actual
			}
			p, err := Make(context.Background(), cfg, have, Options{BinarySHA256: fakeSum, Pin: pin})
			if err != nil {
				t.Fatal(err)
			}
			c := p.Change(state.ModelAddr("local", "tiny"))
			if c == nil || c.Action != tc.wantAction || !strings.Contains(strings.Join(c.Reasons, "; "), tc.wantReason) {
				t.Fatalf("change %+v, want %v because of %q", c, tc.wantAction, tc.wantReason)
			}
			if after := c.After.(*state.ModelRecord); after.SHA256 != locked {
				t.Errorf("planned sha256 %q, want the pinned %q", after.SHA256, locked)
			}
		})
	}
	boom := errors.New(`model "tiny" is not in the model lock file`)
	if _, err := Make(context.Background(), cfg, nil, Options{Pin: func(*state.ModelRecord) error { return boom }}); !errors.Is(err, boom) {
		t.Errorf("a failing pin: err = %v, want %v", err, boom)
	}
}

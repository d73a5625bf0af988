package features

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cucumber/godog"

	"github.com/rbee-dev/rbee/applier"
	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/planner"
	"github.com/rbee-dev/rbee/state"
)

func init() { stepSets = append(stepSets, registerPlanSteps) }

// registerPlanSteps are the steps of plan.feature and config.feature. The
// "recorded" steps write state records straight through the state package
// from this test process: they stand in for a finished `rbee apply` (no hive
// runs) so the planner can be exercised against a known state.
func registerPlanSteps(sc *godog.ScenarioContext, w *world) {
	sc.Before(func(ctx context.Context, _ *godog.Scenario) (context.Context, error) {
		example, err := filepath.Abs("../rbee.hcl.example")
		w.vars["RBEE_EXAMPLE"] = example
		return ctx, err
	})
	sc.Step(`^a server that accepts connections but never answers, on port \$\{(\w+)\}$`, func(name string) error {
		// Nothing calls Accept: the kernel completes the handshake and every
		// request waits, as with a hung hive.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		w.onCleanup(func() { _ = ln.Close() })
		w.vars[name] = fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
		return nil
	})
	sc.Step(`^the state records a finished apply of "([^"]*)"$`, func(cfgFile string) error {
		return recordApply(w, cfgFile)
	})
	sc.Step(`^the state records the worker "([^"]*)" as "([^"]*)"$`, func(addr, st string) error {
		return editRecord(w, addr, func(r state.Record) error {
			wr, ok := r.(*state.WorkerRecord)
			if !ok {
				return fmt.Errorf("%s is not a worker", addr)
			}
			wr.State = state.WorkerState(st)
			return nil
		})
	})
	sc.Step(`^the state records the hive of node "([^"]*)" with binary checksum "([^"]*)"$`, func(node, sum string) error {
		return editRecord(w, "node."+node, func(r state.Record) error {
			r.(*state.NodeRecord).BinarySHA256 = sum
			return nil
		})
	})
	sc.Step(`^another process holds the state lock for "([^"]*)"$`, func(op string) error {
		st, err := w.stateStore()
		if err != nil {
			return err
		}
		info, err := st.Lock(context.Background(), op, 0)
		if err != nil {
			return err
		}
		w.vars["LOCK_ID"] = info.ID
		w.vars["LOCK_PID"] = fmt.Sprint(info.PID)
		return nil
	})
	sc.Step(`^stdout is NDJSON with (\d+) "change" objects? and a "summary" object last$`, func(n int) error {
		objs, err := ndjson(w.stdout)
		if err != nil {
			return err
		}
		changes := 0
		for i, o := range objs {
			switch o["type"] {
			case "change":
				changes++
				for _, k := range []string{"address", "resource", "action", "symbol", "reasons", "depends_on", "before", "after"} {
					if _, ok := o[k]; !ok {
						return fmt.Errorf("change object %d has no %q: %v", i, k, o)
					}
				}
			case "summary":
				if i != len(objs)-1 {
					return fmt.Errorf("summary is object %d of %d, not the last", i+1, len(objs))
				}
			}
		}
		if changes != n {
			return fmt.Errorf("%d change objects, want %d:\n%s", changes, n, w.stdout)
		}
		if len(objs) == 0 || objs[len(objs)-1]["type"] != "summary" {
			return fmt.Errorf("no summary object last:\n%s", w.stdout)
		}
		return nil
	})
	sc.Step(`^the JSON summary has "([^"]*)" = (.+)$`, func(key, want string) error {
		objs, err := ndjson(w.stdout)
		if err != nil {
			return err
		}
		got, _ := json.Marshal(objs[len(objs)-1][key])
		if string(got) != want {
			return fmt.Errorf("summary %q = %s, want %s", key, got, want)
		}
		return nil
	})
	sc.Step(`^the JSON change "([^"]*)" has action "([^"]*)" and depends on "([^"]*)"$`, func(addr, action, deps string) error {
		objs, err := ndjson(w.stdout)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if o["type"] == "change" && o["address"] == addr {
				var got []string
				for _, d := range o["depends_on"].([]any) {
					got = append(got, d.(string))
				}
				if o["action"] != action || strings.Join(got, ",") != deps {
					return fmt.Errorf("%s: action %v, depends_on %v; want %s, %s", addr, o["action"], got, action, deps)
				}
				return nil
			}
		}
		return fmt.Errorf("no change for %s in:\n%s", addr, w.stdout)
	})
	sc.Step(`^the file "([^"]*)" contains "((?:[^"\\]|\\.)*)"$`, func(name, want string) error {
		b, err := os.ReadFile(filepath.Join(w.dir, w.expand(name)))
		if err != nil {
			return err
		}
		if want = w.expand(unquote(want)); !strings.Contains(string(b), want) {
			return fmt.Errorf("%s does not contain %q:\n%s", name, want, tail(string(b), 40))
		}
		return nil
	})
}

func ndjson(s string) ([]map[string]any, error) {
	var out []map[string]any
	for i, line := range strings.Split(strings.TrimSpace(s), "\n") {
		var o map[string]any
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			return nil, fmt.Errorf("line %d is not a JSON object: %v\n%s", i+1, err, line)
		}
		if _, ok := o["type"]; !ok {
			return nil, fmt.Errorf("line %d has no \"type\": %s", i+1, line)
		}
		out = append(out, o)
	}
	return out, nil
}

// recordApply writes what a successful apply of cfgFile would record: every
// desired record, with the hive ready (running this rbee binary), models
// ready and workers idle.
func recordApply(w *world, cfgFile string) error {
	stateDir := filepath.Join(w.dir, ".rbee")
	cfg, diags := config.Load(filepath.Join(w.dir, cfgFile), config.LoadOptions{StateDir: stateDir})
	if diags.HasErrors() {
		var sb strings.Builder
		_ = diags.Write(&sb, false)
		return fmt.Errorf("loading %s:\n%s", cfgFile, sb.String())
	}
	desired, err := planner.Desired(cfg, hiveSHA256)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	var recs []state.Record
	for _, n := range desired.Nodes {
		n.Status, n.LastContact, n.HiveVersion = state.NodeReady, now, "test"
		recs = append(recs, n)
	}
	for _, m := range desired.Models {
		m.Status, m.ActualSHA256, m.Size, m.UpdatedAt = state.ModelReady, strings.Repeat("0", 64), 1, now
		recs = append(recs, m)
	}
	for _, wr := range desired.Workers {
		wr.State, wr.UpdatedAt = state.WorkerIdle, now
		recs = append(recs, wr)
	}
	st, err := w.stateStore()
	if err != nil {
		return err
	}
	return st.Put(context.Background(), recs...)
}

func editRecord(w *world, addr string, edit func(state.Record) error) error {
	a, err := state.ParseAddr(addr)
	if err != nil {
		return err
	}
	st, err := w.stateStore()
	if err != nil {
		return err
	}
	snap, err := st.Snapshot(context.Background())
	if err != nil {
		return err
	}
	r, ok := snap.Get(a)
	if !ok {
		return fmt.Errorf("%s is not in the state", addr)
	}
	if err := edit(r); err != nil {
		return err
	}
	return st.Put(context.Background(), r)
}

// stateStore opens the scenario's state, the one rbee keeps in .rbee.
func (w *world) stateStore() (*state.Store, error) {
	return state.Open(context.Background(), filepath.Join(w.dir, ".rbee"), state.Options{})
}

// hiveSHA256 is the hive checksum the planner expects (the binary with the
// library folder beside it): path "" is the rbee binary under test.
func hiveSHA256(path string) (string, error) {
	if path == "" {
		path = rbeeBin
	}
	return applier.HiveBinarySHA256(path)
}

// fileSHA256 is the sha256 of a file: path "" is the rbee binary under test.
func fileSHA256(path string) (string, error) {
	if path == "" {
		path = rbeeBin
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

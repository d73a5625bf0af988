package features

// Steps of the @slo scenarios: a local fleet whose pool has an slo block, a
// worker slowed for real by SIGSTOP/SIGCONT cycles on its process, and the
// model file under a worker replaced by another model.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cucumber/godog"
)

func init() { stepSets = append(stepSets, registerSLOSteps) }

func registerSLOSteps(sc *godog.ScenarioContext, w *world) {
	var stopCycles func()
	sc.Step(`^a local fleet file with pool "([^"]*)" serving model "([^"]*)" with the slo:$`, func(pool, model string, body *godog.DocString) error {
		if err := w.localFleet([]string{"rbee destroy -auto-approve"}, "HIVE_PORT"); err != nil {
			return err
		}
		port, _ := strconv.Atoi(w.vars["HIVE_PORT"])
		// One thread: a worker on a shared machine decodes at a steady rate
		// when it has no threads spinning for each other.
		hcl := fmt.Sprintf(localFleet, port, model, pool, model, 1, 2, "  threads = 1\n  slo {\n"+body.Content+"\n  }\n")
		return os.WriteFile(filepath.Join(w.dir, "rbee.hcl"), []byte(hcl), 0o644)
	})
	// The worker runs about 0.3 ms out of every 100 (slowDown): a machine
	// tens of times slower, for real. The cycles are the fault itself.
	sc.Step(`^the fleet's worker "([^"]*)" is slowed by SIGSTOP and SIGCONT cycles$`, func(id string) error {
		ws, _, err := w.liveWorker(id)
		if err != nil {
			return err
		}
		if ws.PID <= 0 {
			return fmt.Errorf("worker %s has no pid: %+v", id, ws)
		}
		stop, err := slowDown(ws.PID)
		if err != nil {
			return err
		}
		stopCycles = func() { stop(); stopCycles = nil }
		w.onCleanup(func() {
			if stopCycles != nil {
				stopCycles()
			}
		})
		return nil
	})
	sc.Step(`^the fleet's model "([^"]*)" is the shared model "([^"]*)"$`, func(model, file string) error {
		src, err := sharedModelPath(file)
		if err != nil {
			return err
		}
		p := filepath.Join(w.dir, "rbee.hcl")
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		block := fmt.Sprintf("model \"%s\" {\n  source = \"synth:tiny\"\n}", model)
		if !strings.Contains(string(b), block) {
			return fmt.Errorf("rbee.hcl has no block %q:\n%s", block, b)
		}
		hcl := strings.Replace(string(b), block, fmt.Sprintf("model \"%s\" {\n  source = \"file://%s\"\n}", model, src), 1)
		return os.WriteFile(p, []byte(hcl), 0o644)
	})
	sc.Step(`^the fleet's worker runs at full speed again$`, func() error {
		if stopCycles == nil {
			return fmt.Errorf("no worker is slowed")
		}
		stopCycles()
		return nil
	})
	sc.Step(`^the fleet's worker "([^"]*)" comes back ready after a restart$`, func(id string) error {
		return untilOK(2*time.Minute, func() error {
			ws, _, err := w.liveWorker(id)
			if err != nil {
				return err
			}
			if ws.Restarts < 1 || ws.State != "idle" {
				return fmt.Errorf("worker %s is %s after %d restarts, want idle after a restart", id, ws.State, ws.Restarts)
			}
			return nil
		})
	})
	sc.Step(`^the model file "([^"]*)" on the local hive is replaced by the tiny model of seed (\d+)$`, func(model string, seed int) error {
		c, err := w.localHive()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := c.State(ctx)
		if err != nil {
			return err
		}
		for _, m := range st.Models {
			if m.Name != model {
				continue
			}
			// synth writes atomically: a new file under the same path.
			if err := w.run(fmt.Sprintf("rbee model synth --preset tiny --seed %d --out '%s'", seed, m.Path), time.Minute); err != nil {
				return err
			}
			if w.exit != 0 {
				return fmt.Errorf("rbee model synth exited %d: %s", w.exit, w.stderr)
			}
			return nil
		}
		return fmt.Errorf("the local hive has no model %q (it has %d)", model, len(st.Models))
	})
}

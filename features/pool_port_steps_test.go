package features

// Steps of the pool port scenarios: free loopback ports for a local fleet
// (whose hive and workers are destroyed after the scenario) and a port held
// by another program.

import (
	"fmt"
	"net"
	"strconv"

	"github.com/cucumber/godog"

	"github.com/rbee-dev/rbee/internal/testsshd"
)

func init() { stepSets = append(stepSets, registerPoolPortSteps) }

func registerPoolPortSteps(sc *godog.ScenarioContext, w *world) {
	// NAME is the first of n consecutive free ports; NAME_1 … the next ones.
	sc.Step(`^(\d+) free loopback ports? as "([^"]*)"$`, func(n int, name string) error {
		if err := w.localFleet([]string{"rbee destroy -auto-approve"}); err != nil {
			return err
		}
		for try := 0; try < 50; try++ {
			first, err := testsshd.FreePort("127.0.0.1")
			if err != nil {
				return err
			}
			if first+n > 65536 || first < 1024 {
				continue
			}
			ok := true
			for i := 1; i < n && ok; i++ {
				l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(first+i))
				if err != nil {
					ok = false
					break
				}
				l.Close()
			}
			if !ok {
				continue
			}
			w.vars[name] = strconv.Itoa(first)
			for i := 1; i < n; i++ {
				w.vars[name+"_"+strconv.Itoa(i)] = strconv.Itoa(first + i)
			}
			return nil
		}
		return fmt.Errorf("no %d consecutive free ports on 127.0.0.1", n)
	})
	sc.Step(`^another program listens on 127\.0\.0\.1:"([^"]*)"$`, func(port string) error {
		port = w.expand(port)
		l, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			return fmt.Errorf("hold port %s: %w", port, err)
		}
		w.onCleanup(func() { l.Close() })
		return nil
	})
}

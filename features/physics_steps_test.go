package features

import "github.com/cucumber/godog"

func init() { stepSets = append(stepSets, registerPhysicsSteps) }

// registerPhysicsSteps adds the steps of physics.feature.
func registerPhysicsSteps(sc *godog.ScenarioContext, w *world) {
	sc.Step(`^a local fleet on a free hive port, destroyed afterwards$`, func() error {
		return w.localFleet([]string{"rbee destroy -auto-approve"}, "HIVE_PORT")
	})
}

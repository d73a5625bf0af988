package config

import (
	"time"

	"github.com/rbee-dev/rbee/spec"
)

// workerAttrs are the pool attributes declared by spec.Worker.
func workerAttrs() []string {
	names := make([]string, len(spec.Fields))
	for i, f := range spec.Fields {
		names[i] = f.Name
	}
	return names
}

// worker decodes the pool attributes declared by spec.Worker into w.
func (a *attrs) worker(w *spec.Worker) {
	for _, f := range spec.Fields {
		switch p := f.Ptr(w).(type) {
		case *string:
			a.str(f.Name, p)
		case *int:
			a.integer(f.Name, p)
		case *bool:
			a.boolean(f.Name, p)
		case *time.Duration:
			a.duration(f.Name, p)
		default:
			panic("config: spec.Worker field " + f.Name + " has a type the decoder does not know") // caught by any test
		}
	}
}

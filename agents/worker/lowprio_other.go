//go:build !linux

package worker

// lowerThreadPriority does nothing where thread priorities are not set
// per thread.
func lowerThreadPriority() error { return nil }

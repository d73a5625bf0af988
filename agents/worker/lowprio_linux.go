package worker

import (
	"runtime"
	"syscall"
)

// backgroundNice is the nice value of the thread that hashes the model
// file: the lowest priority, so that on a node whose cores all run decode
// threads the hash takes the CPU only when they do not need it. A decode
// thread that loses its core stalls the others at llama.cpp's barriers.
const backgroundNice = 19

// lowerThreadPriority locks the calling goroutine to its OS thread and
// gives that thread the lowest CPU priority. The goroutine must end without
// unlocking: Go then ends the thread instead of reusing it at that priority.
func lowerThreadPriority() error {
	runtime.LockOSThread()
	return syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), backgroundNice)
}

package infer

import (
	"fmt"
	"strings"
	"time"
)

// NoWorkerError means no worker of the model was ready. Its message says
// why for each recorded worker and what to apply.
type NoWorkerError struct {
	Model       string
	Node, Pool  string   // the filters of the request
	Pools       []string // pools that serve the model (configuration, else state)
	ConfigKnown bool     // Pools comes from the configuration
	Recorded    int      // workers of the model in state that passed the filters
	Notes       []string // why each one was not usable
	// Nodes is set when --node names a node that neither the configuration
	// nor the state knows: it lists the ones that exist.
	Nodes []string
}

func (e *NoWorkerError) Error() string {
	if e.Nodes != nil {
		return fmt.Sprintf("no ready worker for model %q: node %q is not in the configuration; the nodes are %s (fix --node, or leave it out to use any node)", e.Model, e.Node, quoteJoin(e.Nodes))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "no ready worker for model %q", e.Model)
	var filters []string
	if e.Pool != "" {
		filters = append(filters, "pool "+e.Pool)
	}
	if e.Node != "" {
		filters = append(filters, "node "+e.Node)
	}
	if len(filters) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(filters, ", "))
	}
	if e.Recorded == 0 {
		b.WriteString(": the state records no worker for it")
	} else {
		b.WriteString(":")
	}
	for _, n := range e.Notes {
		b.WriteString("\n  - " + n)
	}
	b.WriteString("\n")
	switch {
	case len(e.Pools) == 1:
		fmt.Fprintf(&b, "Pool %q serves it: run `rbee apply` to start its workers (or `rbee apply -target pool.%s` for that pool alone)", e.Pools[0], e.Pools[0])
	case len(e.Pools) > 1:
		fmt.Fprintf(&b, "Pools %s serve it: run `rbee apply` to start their workers", quoteJoin(e.Pools))
	case e.ConfigKnown:
		fmt.Fprintf(&b, "No pool serves it: add a pool with model = %q to the configuration and run `rbee apply`", e.Model)
	default:
		fmt.Fprintf(&b, "Add a pool with model = %q to the configuration and run `rbee apply`", e.Model)
	}
	b.WriteString(", or pass --ephemeral to run on a temporary worker.")
	return b.String()
}

// UnknownModelError means neither the configuration nor the state knows the model.
type UnknownModelError struct {
	Model     string
	Known     []string // every model the configuration or the state names
	ConfigErr error    // why the configuration could not be read, if it could not
}

func (e *UnknownModelError) Error() string {
	if len(e.Known) == 0 && e.ConfigErr != nil {
		return fmt.Sprintf("unknown model %q: the state records no fleet and the configuration could not be read (%v); run `rbee apply` first, or point --config and --state at your fleet", e.Model, e.ConfigErr)
	}
	if len(e.Known) == 0 {
		return fmt.Sprintf("unknown model %q: no model is configured; add a model block and a pool that uses it to rbee.hcl, then run `rbee apply`", e.Model)
	}
	return fmt.Sprintf("unknown model %q: the models are %s (pass one with --model)", e.Model, quoteJoin(e.Known))
}

// BusyError means every ready worker of the model stayed busy through the retries.
type BusyError struct {
	Model   string
	Workers []string
	Waited  time.Duration // total backoff slept
	Notes   []string
}

func (e *BusyError) Error() string {
	msg := fmt.Sprintf("every worker of model %q stayed busy (%s) after retrying for %s; try again, or add replicas or slots to its pool and run `rbee apply`", e.Model, strings.Join(e.Workers, ", "), e.Waited)
	for _, n := range e.Notes {
		msg += "\n  - " + n
	}
	return msg
}

func quoteJoin(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// StallError means a running request got nothing from its worker for the
// stall timeout (a hung or stopped process): the job was cancelled.
type StallError struct {
	Worker, URL string
	Tokens      int // tokens received before the worker went quiet
	Timeout     time.Duration
}

func (e *StallError) Error() string {
	msg := fmt.Sprintf("%s (%s) stalled: nothing for %s after %s; the job was cancelled", e.Worker, e.URL, e.Timeout, plural(e.Tokens, "token"))
	if strings.HasPrefix(e.Worker, "worker.") {
		return msg + fmt.Sprintf(". The worker process may be hung or stopped: see `rbee status` and `rbee logs %s`, or raise --stall-timeout", e.Worker)
	}
	return msg + ". Raise --stall-timeout if it is only slow"
}

// BrokenStreamError means the stream of a running request ended before its
// end event: the worker process exited, or the connection to it broke.
type BrokenStreamError struct {
	Worker, URL string
	Tokens      int  // tokens received before the stream ended
	Exited      bool // the worker's port refuses connections now
	Err         error
}

func (e *BrokenStreamError) Error() string {
	what := "the worker exited or the connection to it broke"
	if e.Exited {
		what = "the worker exited (its port now refuses connections; its hive restarts it)"
	}
	return fmt.Sprintf("%s (%s) stopped streaming after %s: %s (%v). Run the prompt again; `rbee logs %s` shows why",
		e.Worker, e.URL, plural(e.Tokens, "token"), what, e.Err, e.Worker)
}

func (e *BrokenStreamError) Unwrap() error { return e.Err }

// GoneError means a worker refused the connection before it got the request.
type GoneError struct {
	Worker, URL string
	Err         error
}

func (e *GoneError) Error() string {
	return fmt.Sprintf("%s (%s) refused the connection (its process is gone)", e.Worker, e.URL)
}

func (e *GoneError) Unwrap() error { return e.Err }

// NoAnswerError means every ready worker of the model was gone by the time
// the request was sent.
type NoAnswerError struct {
	Model string
	Gone  []*GoneError
}

func (e *NoAnswerError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "no worker of model %q took the request; every one that was ready is gone now:", e.Model)
	for _, g := range e.Gone {
		b.WriteString("\n  - " + g.Error())
	}
	b.WriteString("\nTheir hives restart crashed workers: try again in a moment, and see `rbee status` if it persists.")
	return b.String()
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

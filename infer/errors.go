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

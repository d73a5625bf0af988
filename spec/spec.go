// Package spec declares, once, the settings of a worker that a pool block
// sets: their names (HCL attribute and JSON key alike), defaults and limits,
// and whether changing one updates a running worker in place or replaces
// it. The configuration decodes them, the state records them, the planner
// diffs them and the applier hands them to the hive from this one
// declaration, so adding a setting is one field here plus its use.
package spec

import (
	"fmt"
	"reflect"
	"strings"
	"time"
)

// Worker is what a pool sets for each of its workers (besides the model and
// the port, which the pool derives per worker).
//
// Each field's json tag is its name in HCL, JSON and plan output; its change
// tag says what changing it does to a running worker: "replace" (stop it and
// start a new one) or "update" (the hive takes the new value in place).
type Worker struct {
	Backend   string `json:"backend" change:"replace"`
	Device    int    `json:"device" change:"replace"`
	GPULayers int    `json:"gpu_layers,omitempty" change:"replace"` // layers a GPU worker offloads (the last ones); 0: all
	CtxSize   int    `json:"ctx_size" change:"replace"`
	Slots     int    `json:"slots" change:"replace"`
	Threads   int    `json:"threads" change:"replace"`
	FlashAttn bool   `json:"flash_attn,omitempty" change:"replace"`
	// KVCacheType is the KV cache's element type: f16 (default), q8_0 or
	// q4_0 (the quantized ones need flash_attn).
	KVCacheType string `json:"kv_cache_type,omitempty" change:"replace"`
	// ChatTemplate names a built-in chat template (llama3, chatml, ...)
	// used instead of the model's own; empty: the model's.
	ChatTemplate string `json:"chat_template,omitempty" change:"replace"`
	// Embeddings makes the worker serve /v1/embeddings.
	Embeddings  bool          `json:"embeddings,omitempty" change:"replace"`
	IdleTimeout time.Duration `json:"idle_timeout,omitempty" change:"update"` // nanoseconds in JSON
	LoadTimeout time.Duration `json:"load_timeout,omitempty" change:"update"` // nanoseconds in JSON
	// DrainTimeout bounds how long a worker being replaced or removed may
	// finish its requests in flight; 0 means the hive's default (30 s).
	DrainTimeout time.Duration `json:"drain_timeout,omitempty" change:"update"`
}

// Backends a worker may run on.
const (
	BackendCPU   = "cpu"
	BackendCUDA  = "cuda"
	BackendMetal = "metal"
)

// KVCacheTypes are the accepted values of KVCacheType ("" means the first).
var KVCacheTypes = []string{"f16", "q8_0", "q4_0"}

// Defaults and limits of the fields.
const (
	DefaultBackend     = BackendCPU
	DefaultCtxSize     = 2048
	DefaultSlots       = 4
	DefaultLoadTimeout = 5 * time.Minute

	MaxSlots   = 64
	MinCtxSize = 64
	MaxCtxSize = 1 << 20
	MaxDevice  = 63 // GPU index
	MaxThreads = 1024
)

// Defaults is a Worker with every default set: what a pool block that sets
// nothing asks for.
func Defaults() Worker {
	return Worker{Backend: DefaultBackend, CtxSize: DefaultCtxSize, Slots: DefaultSlots}
}

// Field is one declared setting of Worker.
type Field struct {
	Name    string // HCL attribute and JSON key
	Replace bool   // a change replaces the worker; otherwise it is updated in place
	index   int
}

// Fields lists the settings of Worker in declaration order.
var Fields = fields()

func fields() []Field {
	t := reflect.TypeFor[Worker]()
	out := make([]Field, t.NumField())
	for i := range out {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch f.Tag.Get("change") {
		case "replace":
			out[i] = Field{Name: name, Replace: true, index: i}
		case "update":
			out[i] = Field{Name: name, index: i}
		default:
			panic(fmt.Sprintf("spec: field %s has no change tag", f.Name)) // a declaration error, caught by any test
		}
	}
	return out
}

// Ptr is a pointer to the field in w (*string, *int, *bool or
// *time.Duration), for decoders.
func (f Field) Ptr(w *Worker) any { return reflect.ValueOf(w).Elem().Field(f.index).Addr().Interface() }

// Value is the field's value in w.
func (f Field) Value(w Worker) any { return reflect.ValueOf(w).Field(f.index).Interface() }

// Difference is one field whose value differs between two workers.
type Difference struct {
	Field    Field
	Old, New any
}

// Diff lists the fields whose values differ from old to new, in declaration order.
func Diff(old, new Worker) []Difference {
	var out []Difference
	for _, f := range Fields {
		if o, n := f.Value(old), f.Value(new); o != n {
			out = append(out, Difference{Field: f, Old: o, New: n})
		}
	}
	return out
}

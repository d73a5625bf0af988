package spec

import (
	"testing"
	"time"
)

func TestDiff(t *testing.T) {
	base := Defaults()
	tests := []struct {
		name    string
		change  func(w *Worker)
		want    string // the field that differs
		replace bool
	}{
		{"ctx_size replaces", func(w *Worker) { w.CtxSize = 4096 }, "ctx_size", true},
		{"flash_attn replaces", func(w *Worker) { w.FlashAttn = true }, "flash_attn", true},
		{"idle_timeout updates", func(w *Worker) { w.IdleTimeout = time.Minute }, "idle_timeout", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := base
			tt.change(&w)
			d := Diff(base, w)
			if len(d) != 1 || d[0].Field.Name != tt.want || d[0].Old == d[0].New || d[0].Field.Replace != tt.replace {
				t.Fatalf("Diff = %v, want one %q (replace %v)", d, tt.want, tt.replace)
			}
		})
	}
	if d := Diff(base, base); len(d) != 0 {
		t.Fatalf("Diff of equal workers = %v", d)
	}
}

func TestFieldPtr(t *testing.T) {
	var w Worker
	for _, f := range Fields {
		switch p := f.Ptr(&w).(type) {
		case *string:
			*p = "x"
		case *int:
			*p = 7
		case *bool:
			*p = true
		case *time.Duration:
			*p = time.Second
		default:
			t.Fatalf("field %s has a type decoders do not know: %T", f.Name, p)
		}
	}
	if w.Backend != "x" || w.Slots != 7 || !w.FlashAttn || w.LoadTimeout != time.Second {
		t.Fatalf("Ptr did not reach the fields: %+v", w)
	}
}

package gguf

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// allValues holds one metadata entry of every GGUF value type.
var allValues = []struct {
	key string
	typ ValueType
	val any
}{
	{"u8", TypeUint8, uint8(200)},
	{"i8", TypeInt8, int8(-100)},
	{"u16", TypeUint16, uint16(60000)},
	{"i16", TypeInt16, int16(-30000)},
	{"u32", TypeUint32, uint32(4000000000)},
	{"i32", TypeInt32, int32(-2000000000)},
	{"f32", TypeFloat32, float32(1.5)},
	{"bool", TypeBool, true},
	{"str", TypeString, "héllo ▁world"},
	{"empty", TypeString, ""},
	{"u64", TypeUint64, uint64(1) << 63},
	{"i64", TypeInt64, int64(-1) << 62},
	{"f64", TypeFloat64, math.Pi},
	{"a.u8", TypeArray, []uint8{1, 2, 3}},
	{"a.i8", TypeArray, []int8{-1, 0, 1}},
	{"a.u16", TypeArray, []uint16{1, 65535}},
	{"a.i16", TypeArray, []int16{-32768, 32767}},
	{"a.u32", TypeArray, []uint32{7}},
	{"a.i32", TypeArray, []int32{-7, 6}},
	{"a.f32", TypeArray, []float32{0.5, -0.25}},
	{"a.bool", TypeArray, []bool{true, false}},
	{"a.str", TypeArray, []string{"<s>", "", "▁the"}},
	{"a.u64", TypeArray, []uint64{math.MaxUint64}},
	{"a.i64", TypeArray, []int64{math.MinInt64}},
	{"a.f64", TypeArray, []float64{1e300}},
	{"a.empty", TypeArray, []string{}},
	{"a.nested", TypeArray, []any{[]int32{1, 2}, []string{"x"}, []any{[]bool{true}}}},
}

func bytesSource(b []byte) TensorSource {
	return func(w io.Writer) error { _, err := w.Write(b); return err }
}

func TestRoundTrip(t *testing.T) {
	w := NewWriter()
	for _, v := range allValues {
		w.Set(v.key, v.val)
	}
	tensors := []struct {
		name string
		typ  TensorType
		dims []uint64
	}{
		{"vec", TensorF32, []uint64{3}},        // 12 bytes: forces padding
		{"half", TensorF16, []uint64{5, 2}},    // 20 bytes
		{"q", TensorQ4_0, []uint64{64, 3}},     // 6 blocks of 18 bytes
		{"cube", TensorF32, []uint64{2, 2, 2}}, // 3-D
	}
	data := map[string][]byte{}
	for i, tt := range tensors {
		n := (TensorInfo{Type: tt.typ, Dims: tt.dims}).Bytes()
		b := bytes.Repeat([]byte{byte(i + 1)}, int(n))
		data[tt.name] = b
		w.AddTensor(tt.name, tt.typ, tt.dims, bytesSource(b))
	}
	var buf bytes.Buffer
	n, err := w.WriteTo(context.Background(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo reported %d bytes, wrote %d", n, buf.Len())
	}
	f, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != Version || f.Alignment != DefaultAlignment {
		t.Fatalf("version %d alignment %d", f.Version, f.Alignment)
	}
	if len(f.KV) != len(allValues) {
		t.Fatalf("%d metadata entries, want %d", len(f.KV), len(allValues))
	}
	for i, v := range allValues {
		got := f.KV[i]
		if got.Key != v.key || got.Type != v.typ || !reflect.DeepEqual(got.Value, v.val) {
			t.Errorf("entry %d: got %s %s %#v, want %s %s %#v", i, got.Key, got.Type, got.Value, v.key, v.typ, v.val)
		}
	}
	if f.DataOffset%int64(f.Alignment) != 0 {
		t.Errorf("data offset %d not aligned", f.DataOffset)
	}
	for i, tt := range tensors {
		ti := f.Tensors[i]
		if ti.Name != tt.name || ti.Type != tt.typ || !reflect.DeepEqual(ti.Dims, tt.dims) {
			t.Errorf("tensor %d: got %+v, want %+v", i, ti, tt)
		}
		if ti.Offset%f.Alignment != 0 {
			t.Errorf("tensor %s offset %d not aligned", ti.Name, ti.Offset)
		}
		start := f.DataOffset + int64(ti.Offset)
		if got := buf.Bytes()[start : start+ti.Bytes()]; !bytes.Equal(got, data[tt.name]) {
			t.Errorf("tensor %s data differs", ti.Name)
		}
	}
	if int64(buf.Len())%int64(f.Alignment) != 0 {
		t.Errorf("file length %d is not padded to the alignment", buf.Len())
	}
}

func TestCustomAlignment(t *testing.T) {
	w := NewWriter()
	w.Set("general.alignment", uint32(64))
	w.AddTensor("a", TensorF32, []uint64{3}, bytesSource(make([]byte, 12)))
	w.AddTensor("b", TensorF32, []uint64{3}, bytesSource(make([]byte, 12)))
	var buf bytes.Buffer
	if _, err := w.WriteTo(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	f, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if f.Alignment != 64 || f.DataOffset%64 != 0 || f.Tensors[1].Offset != 64 {
		t.Fatalf("alignment %d, data offset %d, second tensor at %d", f.Alignment, f.DataOffset, f.Tensors[1].Offset)
	}
}

func TestAccessors(t *testing.T) {
	w := NewWriter()
	w.Set("s", "x")
	w.Set("i", int32(-1))
	w.Set("u", uint16(9))
	w.Set("f", float32(0.5))
	w.Set("s", "replaced")
	var buf bytes.Buffer
	if _, err := w.WriteTo(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	f, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := f.String("s"); !ok || s != "replaced" {
		t.Errorf("String(s) = %q, %v", s, ok)
	}
	if _, ok := f.Uint("i"); ok {
		t.Error("Uint of a negative int32 should fail")
	}
	if u, ok := f.Uint("u"); !ok || u != 9 {
		t.Errorf("Uint(u) = %d, %v", u, ok)
	}
	if v, ok := f.Float("f"); !ok || v != 0.5 {
		t.Errorf("Float(f) = %v, %v", v, ok)
	}
	if _, ok := f.String("missing"); ok {
		t.Error("String(missing) found")
	}
}

func TestWriterErrors(t *testing.T) {
	cases := []struct {
		name  string
		build func(w *Writer)
		want  string
	}{
		{"unsupported value", func(w *Writer) { w.Set("k", struct{}{}) }, "unsupported"},
		{"bad nested array", func(w *Writer) { w.Set("k", []any{1}) }, "only arrays"},
		{"alignment type", func(w *Writer) { w.Set("general.alignment", uint64(64)) }, "must be a uint32"},
		{"alignment value", func(w *Writer) { w.Set("general.alignment", uint32(48)) }, "power of two"},
		{"duplicate tensor", func(w *Writer) {
			w.AddTensor("t", TensorF32, []uint64{1}, bytesSource(make([]byte, 4)))
			w.AddTensor("t", TensorF32, []uint64{1}, bytesSource(make([]byte, 4)))
		}, "twice"},
		{"partial block", func(w *Writer) { w.AddTensor("t", TensorQ4_0, []uint64{33}, bytesSource(nil)) }, "first dimension"},
		{"no dims", func(w *Writer) { w.AddTensor("t", TensorF32, nil, bytesSource(nil)) }, "dimensions"},
		{"short source", func(w *Writer) { w.AddTensor("t", TensorF32, []uint64{2}, bytesSource(make([]byte, 4))) }, "wrote 4 bytes, want 8"},
		{"failing source", func(w *Writer) {
			w.AddTensor("t", TensorF32, []uint64{2}, func(io.Writer) error { return errors.New("boom") })
		}, "boom"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := NewWriter()
			c.build(w)
			_, err := w.WriteTo(context.Background(), io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

// header builds raw GGUF bytes for malformed-input tests.
type header struct{ bytes.Buffer }

func (h *header) u32(v uint32) *header { _ = binary.Write(h, binary.LittleEndian, v); return h }
func (h *header) u64(v uint64) *header { _ = binary.Write(h, binary.LittleEndian, v); return h }
func (h *header) str(s string) *header { h.u64(uint64(len(s))); h.WriteString(s); return h }
func ggufHeader(tensors, kvs uint64) *header {
	h := &header{}
	h.WriteString(Magic)
	return h.u32(3).u64(tensors).u64(kvs)
}

func TestReadErrors(t *testing.T) {
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a GGUF file"},
		{"short", []byte("GG"), "not a GGUF file"},
		{"wrong magic", []byte("PK\x03\x04 zip file"), `starts with "PK\x03\x04"`},
		{"version 1", func() []byte { h := &header{}; h.WriteString(Magic); return h.u32(1).Bytes() }(), "unsupported GGUF version 1"},
		{"big-endian", func() []byte { h := &header{}; h.WriteString(Magic); return h.u32(3 << 24).Bytes() }(), "big-endian"},
		{"truncated counts", func() []byte { h := &header{}; h.WriteString(Magic); return h.u32(3).u32(0).Bytes() }(), "truncated"},
		{"too many tensors", ggufHeader(1<<40, 0).Bytes(), "claims"},
		{"too many kvs", ggufHeader(0, 1<<40).Bytes(), "claims"},
		{"huge string", ggufHeader(0, 1).u64(1 << 50).Bytes(), "limit"},
		{"claimed string longer than data", ggufHeader(0, 1).u64(1 << 20).Bytes(), "truncated"},
		{"unknown value type", ggufHeader(0, 1).str("k").u32(99).Bytes(), "unknown metadata value type 99"},
		{"bad bool", append(ggufHeader(0, 1).str("k").u32(uint32(TypeBool)).Bytes(), 7), "neither 0 nor 1"},
		{"huge array", ggufHeader(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeUint8)).u64(1 << 40).Bytes(), "exceeds the limit"},
		{"array longer than data", ggufHeader(0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeString)).u64(1 << 27).Bytes(), "truncated"},
		{"deep arrays", func() []byte {
			h := ggufHeader(0, 1).str("k").u32(uint32(TypeArray))
			for i := 0; i < 10; i++ {
				h.u32(uint32(TypeArray)).u64(1)
			}
			return h.Bytes()
		}(), "nested"},
		{"bad alignment", ggufHeader(0, 1).str("general.alignment").u32(uint32(TypeUint32)).u32(3).Bytes(), "power of two"},
		{"too many dims", ggufHeader(1, 0).str("t").u32(5).Bytes(), "dimensions"},
		{"dims overflow", ggufHeader(1, 0).str("t").u32(2).u64(1 << 40).u64(1 << 40).Bytes(), "too large"},
		{"partial block", ggufHeader(1, 0).str("t").u32(1).u64(33).u32(uint32(TensorQ4_0)).u64(0).Bytes(), "block size"},
		{"unaligned offset", ggufHeader(1, 0).str("t").u32(1).u64(4).u32(0).u64(3).Bytes(), "alignment"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(c.data))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

// TestReadEveryPrefix cuts a valid header at every byte: each cut must give a
// clean error.
func TestReadEveryPrefix(t *testing.T) {
	w := NewWriter()
	for _, v := range allValues {
		w.Set(v.key, v.val)
	}
	w.AddTensor("t", TensorF32, []uint64{4}, bytesSource(make([]byte, 16)))
	var buf bytes.Buffer
	if _, err := w.WriteTo(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	f, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	// The header ends after the last tensor info, before padding.
	for n := 0; n < int(f.DataOffset)-int(f.Alignment); n++ {
		if _, err := Read(bytes.NewReader(buf.Bytes()[:n])); err == nil {
			t.Fatalf("prefix of %d bytes parsed without error", n)
		}
	}
}

func TestReadFileTruncatedData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.gguf")
	if _, err := SynthFile(context.Background(), path, "tiny", 1); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if _, err := ReadFile(path); err != nil {
		t.Fatalf("complete file: %v", err)
	}
	if err := os.Truncate(path, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(path)
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("err = %v, want a truncation error", err)
	}
	if _, err := ReadFile(filepath.Dir(path)); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("directory: err = %v", err)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing.gguf")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: err = %v", err)
	}
}

func TestSummaryQuantizationFallback(t *testing.T) {
	cases := []struct {
		name     string
		fileType any // nil: no general.file_type
		want     string
	}{
		{"file type wins", uint32(FileTypeMostlyQ40), "Q4_0"},
		{"Q4_K_M by number", uint32(15), "Q4_K_M"},
		{"unknown file type", uint32(999), "file_type(999)"},
		{"dominant tensor type", nil, "Q8_0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := NewWriter()
			w.Set("general.architecture", "phi3")
			w.Set("phi3.context_length", uint64(4096))
			if c.fileType != nil {
				w.Set("general.file_type", c.fileType)
			}
			w.AddTensor("norm", TensorF32, []uint64{64}, bytesSource(make([]byte, 256)))
			w.AddTensor("w", TensorQ8_0, []uint64{64, 4}, bytesSource(make([]byte, 8*34)))
			var buf bytes.Buffer
			if _, err := w.WriteTo(context.Background(), &buf); err != nil {
				t.Fatal(err)
			}
			f, err := Read(&buf)
			if err != nil {
				t.Fatal(err)
			}
			s := f.Summary()
			if s.Quantization != c.want || s.Architecture != "phi3" || s.ContextLength != 4096 || s.Parameters != 64+256 || s.HasChatTemplate {
				t.Fatalf("summary %+v, want quantization %s", s, c.want)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	params := []struct {
		n    int64
		want string
	}{{0, "0"}, {999, "999"}, {426624, "427K"}, {2_300_000, "2.3M"}, {1_100_048_384, "1.10B"}, {70_000_000_000, "70.00B"}}
	for _, c := range params {
		if got := FormatParameters(c.n); got != c.want {
			t.Errorf("FormatParameters(%d) = %q, want %q", c.n, got, c.want)
		}
	}
	sizes := []struct {
		n    int64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1719904, "1.6 MiB"}, {619762272, "591.1 MiB"}, {5 << 30, "5.0 GiB"}}
	for _, c := range sizes {
		if got := FormatBytes(c.n); got != c.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}

func TestFloat16(t *testing.T) {
	cases := []struct {
		in   float32
		bits uint16
	}{
		{0, 0x0000},
		{1, 0x3c00},
		{-2, 0xc000},
		{0.5, 0x3800},
		{65504, 0x7bff},
		{1e6, 0x7c00},                   // overflow → +Inf
		{float32(math.Inf(-1)), 0xfc00}, // -Inf
		{6.103515625e-05, 0x0400},       // smallest normal
		{5.9604645e-08, 0x0001},         // smallest subnormal
		{1e-9, 0x0000},                  // underflow → 0
		{0.1, 0x2e66},                   // rounds to nearest
		{1 + 1.0/2048, 0x3c00},          // tie rounds to even (down)
		{1 + 3.0/2048, 0x3c02},          // tie rounds to even (up)
	}
	for _, c := range cases {
		if got := float16Bits(c.in); got != c.bits {
			t.Errorf("float16Bits(%g) = %#04x, want %#04x", c.in, got, c.bits)
		}
	}
	if got := float16Bits(float32(math.NaN())); got&0x7c00 != 0x7c00 || got&0x3ff == 0 {
		t.Errorf("NaN → %#04x, not a NaN", got)
	}
	for _, v := range []float32{0, 1, -2, 0.5, 65504, 6.103515625e-05, 5.9604645e-08, -0.099975586} {
		if got := float16Value(float16Bits(v)); got != v {
			t.Errorf("round trip of %g gave %g", v, got)
		}
	}
}

package gguf

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// TensorSource writes exactly the bytes of one tensor's data to w.
type TensorSource func(w io.Writer) error

// Writer builds a GGUF v3 file. Metadata and tensors are declared first; WriteTo
// then writes the header and streams each tensor's data from its source, so a
// model larger than memory can be generated.
type Writer struct {
	kv      []KV
	keys    map[string]int
	tensors []pendingTensor
	names   map[string]bool
	err     error
}

type pendingTensor struct {
	info TensorInfo
	src  TensorSource
}

// NewWriter returns an empty Writer.
func NewWriter() *Writer {
	return &Writer{keys: map[string]int{}, names: map[string]bool{}}
}

// Set adds or replaces a metadata entry. The GGUF type follows the Go type of
// value (uint32 → uint32, []string → array of string, ...); an unsupported
// type makes WriteTo fail.
func (w *Writer) Set(key string, value any) {
	t, err := valueTypeOf(value)
	if err != nil && w.err == nil {
		w.err = fmt.Errorf("metadata %q: %w", key, err)
	}
	if key == "general.alignment" && w.err == nil {
		if a, ok := value.(uint32); !ok || a == 0 || a&(a-1) != 0 || a > maxAlignment {
			w.err = fmt.Errorf("general.alignment must be a uint32 power of two up to %d, got %T %v", maxAlignment, value, value)
		}
	}
	kv := KV{Key: key, Type: t, Value: value}
	if i, ok := w.keys[key]; ok {
		w.kv[i] = kv
		return
	}
	w.keys[key] = len(w.kv)
	w.kv = append(w.kv, kv)
}

// AddTensor declares a tensor with dimensions in ggml order (dims[0] is the
// input dimension). src is called during WriteTo and must write exactly the
// tensor's size in bytes.
func (w *Writer) AddTensor(name string, typ TensorType, dims []uint64, src TensorSource) {
	t := TensorInfo{Name: name, Type: typ, Dims: append([]uint64(nil), dims...)}
	switch {
	case w.err != nil:
	case w.names[name]:
		w.err = fmt.Errorf("tensor %q is declared twice", name)
	case len(dims) == 0 || len(dims) > maxDims:
		w.err = fmt.Errorf("tensor %q: %d dimensions, want 1 to %d", name, len(dims), maxDims)
	case t.Bytes() < 0:
		w.err = fmt.Errorf("tensor %q: type %s cannot hold a first dimension of %d", name, typ, dims[0])
	}
	w.names[name] = true
	w.tensors = append(w.tensors, pendingTensor{info: t, src: src})
}

// alignment returns general.alignment if set (Set has checked it), else DefaultAlignment.
func (w *Writer) alignment() uint64 {
	if i, ok := w.keys["general.alignment"]; ok {
		return uint64(w.kv[i].Value.(uint32))
	}
	return DefaultAlignment
}

// WriteTo writes the whole file to out and returns the number of bytes
// written. It stops early when ctx is cancelled.
func (w *Writer) WriteTo(ctx context.Context, out io.Writer) (int64, error) {
	if w.err != nil {
		return 0, w.err
	}
	align := w.alignment()
	// Lay out tensor data.
	var off uint64
	for i := range w.tensors {
		w.tensors[i].info.Offset = off
		off = alignUp(off+uint64(w.tensors[i].info.Bytes()), align)
	}
	cw := &countingWriter{w: out}
	bw := bufio.NewWriterSize(cw, 1<<20)
	e := &encoder{w: bw}
	e.raw([]byte(Magic))
	e.u32(Version)
	e.u64(uint64(len(w.tensors)))
	e.u64(uint64(len(w.kv)))
	for _, kv := range w.kv {
		e.str(kv.Key)
		e.u32(uint32(kv.Type))
		e.value(kv.Value)
	}
	for _, t := range w.tensors {
		e.str(t.info.Name)
		e.u32(uint32(len(t.info.Dims)))
		for _, d := range t.info.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.info.Type))
		e.u64(t.info.Offset)
	}
	if e.err != nil {
		return cw.n, e.err
	}
	e.pad(e.n, align)
	dataStart := e.n
	for _, t := range w.tensors {
		if err := ctx.Err(); err != nil {
			return cw.n, err
		}
		want := t.info.Bytes()
		tc := &countingWriter{w: bw}
		if err := t.src(tc); err != nil {
			return cw.n, fmt.Errorf("tensor %q: %w", t.info.Name, err)
		}
		if tc.n != want {
			return cw.n, fmt.Errorf("tensor %q: source wrote %d bytes, want %d", t.info.Name, tc.n, want)
		}
		e.n += tc.n
		e.pad(e.n-dataStart, align)
	}
	if e.err != nil {
		return cw.n, e.err
	}
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	return cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// encoder writes little-endian GGUF primitives, remembering the first error.
type encoder struct {
	w   *bufio.Writer
	n   int64
	err error
	buf [8]byte
}

func (e *encoder) raw(b []byte) {
	if e.err != nil {
		return
	}
	k, err := e.w.Write(b)
	e.n += int64(k)
	e.err = err
}

func (e *encoder) u8(v uint8) { e.raw([]byte{v}) }
func (e *encoder) u16(v uint16) {
	binary.LittleEndian.PutUint16(e.buf[:], v)
	e.raw(e.buf[:2])
}
func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.buf[:], v)
	e.raw(e.buf[:4])
}
func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.buf[:], v)
	e.raw(e.buf[:8])
}
func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	if e.err == nil {
		k, err := e.w.WriteString(s)
		e.n += int64(k)
		e.err = err
	}
}

// pad writes zero bytes until pos is a multiple of align.
func (e *encoder) pad(pos int64, align uint64) {
	if n := int64(alignUp(uint64(pos), align)) - pos; n > 0 {
		e.raw(make([]byte, n))
	}
}

func (e *encoder) bool(v bool) {
	if v {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

func (e *encoder) value(v any) {
	switch v := v.(type) {
	case uint8:
		e.u8(v)
	case int8:
		e.u8(uint8(v))
	case uint16:
		e.u16(v)
	case int16:
		e.u16(uint16(v))
	case uint32:
		e.u32(v)
	case int32:
		e.u32(uint32(v))
	case float32:
		e.u32(math.Float32bits(v))
	case bool:
		e.bool(v)
	case string:
		e.str(v)
	case uint64:
		e.u64(v)
	case int64:
		e.u64(uint64(v))
	case float64:
		e.u64(math.Float64bits(v))
	case []uint8:
		writeArray(e, TypeUint8, v, e.u8)
	case []int8:
		writeArray(e, TypeInt8, v, func(x int8) { e.u8(uint8(x)) })
	case []uint16:
		writeArray(e, TypeUint16, v, e.u16)
	case []int16:
		writeArray(e, TypeInt16, v, func(x int16) { e.u16(uint16(x)) })
	case []uint32:
		writeArray(e, TypeUint32, v, e.u32)
	case []int32:
		writeArray(e, TypeInt32, v, func(x int32) { e.u32(uint32(x)) })
	case []float32:
		writeArray(e, TypeFloat32, v, func(x float32) { e.u32(math.Float32bits(x)) })
	case []bool:
		writeArray(e, TypeBool, v, e.bool)
	case []string:
		writeArray(e, TypeString, v, e.str)
	case []uint64:
		writeArray(e, TypeUint64, v, e.u64)
	case []int64:
		writeArray(e, TypeInt64, v, func(x int64) { e.u64(uint64(x)) })
	case []float64:
		writeArray(e, TypeFloat64, v, func(x float64) { e.u64(math.Float64bits(x)) })
	case []any:
		writeArray(e, TypeArray, v, e.value)
	default:
		if e.err == nil {
			e.err = fmt.Errorf("cannot encode metadata value of Go type %T", v)
		}
	}
}

func writeArray[T any](e *encoder, et ValueType, vs []T, put func(T)) {
	e.u32(uint32(et))
	e.u64(uint64(len(vs)))
	for _, v := range vs {
		put(v)
	}
}

var errUnsupportedValue = errors.New("unsupported metadata value type")

// valueTypeOf maps a Go value to its GGUF type tag.
func valueTypeOf(v any) (ValueType, error) {
	switch v := v.(type) {
	case uint8:
		return TypeUint8, nil
	case int8:
		return TypeInt8, nil
	case uint16:
		return TypeUint16, nil
	case int16:
		return TypeInt16, nil
	case uint32:
		return TypeUint32, nil
	case int32:
		return TypeInt32, nil
	case float32:
		return TypeFloat32, nil
	case bool:
		return TypeBool, nil
	case string:
		return TypeString, nil
	case uint64:
		return TypeUint64, nil
	case int64:
		return TypeInt64, nil
	case float64:
		return TypeFloat64, nil
	case []uint8, []int8, []uint16, []int16, []uint32, []int32, []float32, []bool, []string, []uint64, []int64, []float64:
		return TypeArray, nil
	case []any:
		for _, x := range v {
			if t, err := valueTypeOf(x); err != nil || t != TypeArray {
				return TypeArray, fmt.Errorf("%w: []any may hold only arrays, found %T", errUnsupportedValue, x)
			}
		}
		return TypeArray, nil
	}
	return 0, fmt.Errorf("%w: %T", errUnsupportedValue, v)
}

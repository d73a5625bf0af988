// Package gguf reads and writes GGUF, the llama.cpp model file format: a
// header, typed metadata key/values, tensor descriptions and aligned tensor
// data. It also generates small random-weight llama models ("synth") so the
// whole stack can run offline. It is pure Go and needs no cgo.
package gguf

import "fmt"

// Magic is the four bytes every GGUF file starts with.
const Magic = "GGUF"

// Version is the GGUF version this package writes. Reading also accepts 2.
const Version = 3

// DefaultAlignment is the tensor data alignment used when general.alignment is absent.
const DefaultAlignment = 32

// ValueType is the on-disk type tag of a metadata value.
type ValueType uint32

// Metadata value types, as numbered by the GGUF specification.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

// String returns the specification name of the type ("uint32", "string", ...).
func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// KV is one metadata entry. Value holds a Go value matching Type: uint8,
// int8, uint16, int16, uint32, int32, float32, bool, string, uint64, int64,
// float64, or for arrays a slice of one of those ([]string, []float32, ...),
// or []any whose items are themselves arrays.
type KV struct {
	Key   string
	Type  ValueType
	Value any
}

// TensorInfo describes one tensor: its name, dimensions in ggml order
// (Dims[0] is the innermost, input dimension), element type and offset of its
// data relative to the start of the data section.
type TensorInfo struct {
	Name   string
	Dims   []uint64
	Type   TensorType
	Offset uint64
}

// Elements returns the number of elements of the tensor.
func (t TensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range t.Dims {
		n *= int64(d)
	}
	return n
}

// Bytes returns the size of the tensor data, or -1 if the type is unknown or
// the first dimension is not a whole number of blocks.
func (t TensorInfo) Bytes() int64 {
	return t.Type.RowsBytes(t.Elements())
}

// File is a parsed GGUF header: metadata and tensor descriptions. Tensor data
// is not loaded.
type File struct {
	Version    uint32
	KV         []KV
	Tensors    []TensorInfo
	Alignment  uint64
	DataOffset int64 // where tensor data starts, from the beginning of the file
	Size       int64 // size of the file in bytes, when known (ReadFile); 0 otherwise

	index map[string]int
}

// Lookup returns the metadata entry for key.
func (f *File) Lookup(key string) (KV, bool) {
	if f.index == nil {
		f.index = make(map[string]int, len(f.KV))
		for i, kv := range f.KV {
			f.index[kv.Key] = i
		}
	}
	i, ok := f.index[key]
	if !ok {
		return KV{}, false
	}
	return f.KV[i], true
}

// String returns the string value of key, if it exists and is a string.
func (f *File) String(key string) (string, bool) {
	kv, ok := f.Lookup(key)
	if !ok {
		return "", false
	}
	s, ok := kv.Value.(string)
	return s, ok
}

// Uint returns the value of key as an unsigned integer, if it is an integer
// type with a non-negative value.
func (f *File) Uint(key string) (uint64, bool) {
	kv, ok := f.Lookup(key)
	if !ok {
		return 0, false
	}
	switch v := kv.Value.(type) {
	case uint8:
		return uint64(v), true
	case uint16:
		return uint64(v), true
	case uint32:
		return uint64(v), true
	case uint64:
		return v, true
	case int8:
		return uint64(v), v >= 0
	case int16:
		return uint64(v), v >= 0
	case int32:
		return uint64(v), v >= 0
	case int64:
		return uint64(v), v >= 0
	}
	return 0, false
}

// Float returns the value of key as a float64, if it is a floating-point type.
func (f *File) Float(key string) (float64, bool) {
	kv, ok := f.Lookup(key)
	if !ok {
		return 0, false
	}
	switch v := kv.Value.(type) {
	case float32:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

// Tensor returns the description of the named tensor.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	for _, t := range f.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return TensorInfo{}, false
}

package gguf

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// Limits that keep a corrupt or hostile header from exhausting memory. Real
// models stay far below them (a 256k-token vocabulary, a few thousand tensors).
const (
	maxStringLen    = 64 << 20 // one metadata string (chat templates are kilobytes)
	maxArrayLen     = 1 << 28  // elements of one metadata array
	maxArrayDepth   = 4        // nesting of arrays of arrays
	maxKVCount      = 1 << 20
	maxTensorCount  = 1 << 22
	maxDims         = 4 // GGML_MAX_DIMS
	preallocLimit   = 1 << 14
	maxAlignment    = 1 << 20
	directReadLimit = 1 << 16
)

// ErrNotGGUF is returned (wrapped) when the input does not start with the GGUF magic.
var ErrNotGGUF = errors.New("not a GGUF file (missing \"GGUF\" magic bytes)")

// ReadFile parses the header of the GGUF file at path. It checks that every
// tensor's data lies within the file, so a truncated download is caught.
func ReadFile(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open model file: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat model file: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s is a directory, not a GGUF file", path)
	}
	f, err := Read(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.Size = st.Size()
	if err := f.checkBounds(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Read parses a GGUF header (metadata and tensor descriptions) from r; it
// buffers reads, so r may be consumed somewhat past the header. Tensor data is
// not read. Malformed input gives an error, never a panic.
func Read(r io.Reader) (*File, error) {
	d := &decoder{r: bufio.NewReaderSize(r, 1<<16)}
	f, err := d.file()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("GGUF header is truncated at byte %d: the file is incomplete (re-download or regenerate it)", d.off)
		}
		return nil, err
	}
	return f, nil
}

// checkBounds verifies tensor offsets against the alignment and the file size.
func (f *File) checkBounds() error {
	for _, t := range f.Tensors {
		n := t.Bytes()
		if n < 0 {
			continue // unknown type: cannot check its extent
		}
		end := uint64(f.DataOffset) + t.Offset + uint64(n)
		if end < t.Offset || end > uint64(f.Size) {
			return fmt.Errorf("tensor %q ends at byte %d but the file has only %d bytes: the file is truncated (re-download or regenerate it)", t.Name, end, f.Size)
		}
	}
	return nil
}

// decoder reads little-endian GGUF primitives and tracks the offset.
type decoder struct {
	r   *bufio.Reader
	off int64
	buf [8]byte
}

func (d *decoder) read(n int) ([]byte, error) {
	k, err := io.ReadFull(d.r, d.buf[:n])
	d.off += int64(k)
	return d.buf[:n], err
}

func (d *decoder) u8() (uint8, error) {
	b, err := d.read(1)
	return b[0], err
}

func (d *decoder) u16() (uint16, error) {
	b, err := d.read(2)
	return binary.LittleEndian.Uint16(b), err
}

func (d *decoder) u32() (uint32, error) {
	b, err := d.read(4)
	return binary.LittleEndian.Uint32(b), err
}

func (d *decoder) u64() (uint64, error) {
	b, err := d.read(8)
	return binary.LittleEndian.Uint64(b), err
}

func (d *decoder) str() (string, error) {
	n, err := d.u64()
	if err != nil {
		return "", err
	}
	if n > maxStringLen {
		return "", fmt.Errorf("string of %d bytes at byte %d exceeds the %d-byte limit: the file is corrupt", n, d.off-8, maxStringLen)
	}
	if n <= directReadLimit {
		b := make([]byte, n)
		k, err := io.ReadFull(d.r, b)
		d.off += int64(k)
		return string(b), err
	}
	// Large claimed length: grow with the data actually present.
	var sb bytes.Buffer
	k, err := io.CopyN(&sb, d.r, int64(n))
	d.off += k
	return sb.String(), err
}

func (d *decoder) file() (*File, error) {
	magic, err := d.read(4)
	if err != nil {
		if d.off == 0 {
			return nil, fmt.Errorf("%w: the input is empty", ErrNotGGUF)
		}
		return nil, fmt.Errorf("%w: the input has only %d bytes", ErrNotGGUF, d.off)
	}
	if string(magic) != Magic {
		return nil, fmt.Errorf("%w: it starts with %q", ErrNotGGUF, magic)
	}
	f := &File{}
	if f.Version, err = d.u32(); err != nil {
		return nil, err
	}
	if f.Version == 2<<24 || f.Version == 3<<24 {
		return nil, fmt.Errorf("big-endian GGUF files are not supported; use a little-endian build of the model")
	}
	if f.Version != 2 && f.Version != 3 {
		return nil, fmt.Errorf("unsupported GGUF version %d (this build reads versions 2 and 3)", f.Version)
	}
	nTensors, err := d.u64()
	if err != nil {
		return nil, err
	}
	nKV, err := d.u64()
	if err != nil {
		return nil, err
	}
	if nTensors > maxTensorCount {
		return nil, fmt.Errorf("header claims %d tensors (limit %d): the file is corrupt", nTensors, maxTensorCount)
	}
	if nKV > maxKVCount {
		return nil, fmt.Errorf("header claims %d metadata entries (limit %d): the file is corrupt", nKV, maxKVCount)
	}
	f.KV = make([]KV, 0, min(nKV, preallocLimit))
	for i := uint64(0); i < nKV; i++ {
		key, err := d.str()
		if err != nil {
			return nil, err
		}
		t, err := d.u32()
		if err != nil {
			return nil, err
		}
		v, err := d.value(ValueType(t), 0)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, err
			}
			return nil, fmt.Errorf("metadata %q: %w", key, err)
		}
		f.KV = append(f.KV, KV{Key: key, Type: ValueType(t), Value: v})
	}
	f.Alignment = DefaultAlignment
	if a, ok := f.Uint("general.alignment"); ok {
		if a == 0 || a&(a-1) != 0 || a > maxAlignment {
			return nil, fmt.Errorf("general.alignment is %d; it must be a power of two up to %d", a, maxAlignment)
		}
		f.Alignment = a
	}
	f.Tensors = make([]TensorInfo, 0, min(nTensors, preallocLimit))
	for i := uint64(0); i < nTensors; i++ {
		t, err := d.tensorInfo()
		if err != nil {
			return nil, err
		}
		if t.Offset%f.Alignment != 0 {
			return nil, fmt.Errorf("tensor %q has offset %d, not a multiple of the alignment %d: the file is corrupt", t.Name, t.Offset, f.Alignment)
		}
		f.Tensors = append(f.Tensors, t)
	}
	f.DataOffset = int64(alignUp(uint64(d.off), f.Alignment))
	return f, nil
}

func (d *decoder) tensorInfo() (TensorInfo, error) {
	var t TensorInfo
	var err error
	if t.Name, err = d.str(); err != nil {
		return t, err
	}
	nd, err := d.u32()
	if err != nil {
		return t, err
	}
	if nd > maxDims {
		return t, fmt.Errorf("tensor %q has %d dimensions (ggml allows at most %d): the file is corrupt", t.Name, nd, maxDims)
	}
	t.Dims = make([]uint64, nd)
	total := uint64(1)
	for j := range t.Dims {
		if t.Dims[j], err = d.u64(); err != nil {
			return t, err
		}
		if t.Dims[j] > math.MaxInt64 || (t.Dims[j] != 0 && total > math.MaxInt64/t.Dims[j]) {
			return t, fmt.Errorf("tensor %q has dimensions too large to address: the file is corrupt", t.Name)
		}
		total *= t.Dims[j]
	}
	tt, err := d.u32()
	if err != nil {
		return t, err
	}
	t.Type = TensorType(tt)
	if t.Offset, err = d.u64(); err != nil {
		return t, err
	}
	if t.Type.Known() && nd > 0 {
		be, _ := t.Type.BlockSize()
		if int64(t.Dims[0])%be != 0 {
			return t, fmt.Errorf("tensor %q: first dimension %d is not a multiple of the %s block size %d: the file is corrupt", t.Name, t.Dims[0], t.Type, be)
		}
	}
	return t, nil
}

// value reads one metadata value of type t.
func (d *decoder) value(t ValueType, depth int) (any, error) {
	switch t {
	case TypeUint8:
		return d.u8()
	case TypeInt8:
		return d.i8()
	case TypeUint16:
		return d.u16()
	case TypeInt16:
		return d.i16()
	case TypeUint32:
		return d.u32()
	case TypeInt32:
		return d.i32()
	case TypeFloat32:
		return d.f32()
	case TypeBool:
		return d.boolean()
	case TypeString:
		return d.str()
	case TypeUint64:
		return d.u64()
	case TypeInt64:
		return d.i64()
	case TypeFloat64:
		return d.f64()
	case TypeArray:
		return d.array(depth)
	}
	return nil, fmt.Errorf("unknown metadata value type %d: the file is corrupt or from a newer GGUF version", uint32(t))
}

// The signed, float and bool readers, on top of the unsigned ones.
func (d *decoder) i8() (int8, error)     { v, err := d.u8(); return int8(v), err }
func (d *decoder) i16() (int16, error)   { v, err := d.u16(); return int16(v), err }
func (d *decoder) i32() (int32, error)   { v, err := d.u32(); return int32(v), err }
func (d *decoder) i64() (int64, error)   { v, err := d.u64(); return int64(v), err }
func (d *decoder) f32() (float32, error) { v, err := d.u32(); return math.Float32frombits(v), err }
func (d *decoder) f64() (float64, error) { v, err := d.u64(); return math.Float64frombits(v), err }

func (d *decoder) boolean() (bool, error) {
	v, err := d.u8()
	if err == nil && v > 1 {
		return false, fmt.Errorf("bool value %d is neither 0 nor 1", v)
	}
	return v == 1, err
}

func (d *decoder) array(depth int) (any, error) {
	if depth >= maxArrayDepth {
		return nil, fmt.Errorf("arrays nested deeper than %d levels", maxArrayDepth)
	}
	et, err := d.u32()
	if err != nil {
		return nil, err
	}
	n, err := d.u64()
	if err != nil {
		return nil, err
	}
	if n > maxArrayLen {
		return nil, fmt.Errorf("array of %d elements exceeds the limit of %d", n, maxArrayLen)
	}
	c := int(min(n, preallocLimit))
	switch ValueType(et) {
	case TypeUint8:
		return readArray(d, n, c, d.u8)
	case TypeInt8:
		return readArray(d, n, c, d.i8)
	case TypeUint16:
		return readArray(d, n, c, d.u16)
	case TypeInt16:
		return readArray(d, n, c, d.i16)
	case TypeUint32:
		return readArray(d, n, c, d.u32)
	case TypeInt32:
		return readArray(d, n, c, d.i32)
	case TypeFloat32:
		return readArray(d, n, c, d.f32)
	case TypeBool:
		return readArray(d, n, c, d.boolean)
	case TypeString:
		return readArray(d, n, c, d.str)
	case TypeUint64:
		return readArray(d, n, c, d.u64)
	case TypeInt64:
		return readArray(d, n, c, d.i64)
	case TypeFloat64:
		return readArray(d, n, c, d.f64)
	case TypeArray:
		return readArray(d, n, c, func() (any, error) { return d.array(depth + 1) })
	}
	return nil, fmt.Errorf("unknown array element type %d: the file is corrupt or from a newer GGUF version", et)
}

// readArray reads n elements with next, growing the slice as data arrives so
// a huge claimed count in a short file fails at end of input, not at allocation.
func readArray[T any](d *decoder, n uint64, capacity int, next func() (T, error)) ([]T, error) {
	out := make([]T, 0, capacity)
	for i := uint64(0); i < n; i++ {
		v, err := next()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func alignUp(n, a uint64) uint64 {
	return (n + a - 1) / a * a
}

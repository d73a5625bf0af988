package gguf

import (
	"bytes"
	"context"
	"testing"
)

// FuzzRead feeds arbitrary bytes to Read: it must return an error or a File,
// never panic or allocate without bound.
func FuzzRead(f *testing.F) {
	w := NewWriter()
	for _, v := range allValues {
		w.Set(v.key, v.val)
	}
	w.AddTensor("t", TensorQ4_0, []uint64{32, 2}, bytesSource(make([]byte, 36)))
	var buf bytes.Buffer
	if _, err := w.WriteTo(context.Background(), &buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("GGUF"))
	f.Add([]byte{})
	f.Add(ggufHeader(1, 1).str("general.alignment").u32(uint32(TypeUint32)).u32(64).Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		s := file.Summary()
		if s.TensorCount != len(file.Tensors) {
			t.Fatalf("summary counts %d tensors, file has %d", s.TensorCount, len(file.Tensors))
		}
		if file.DataOffset%int64(file.Alignment) != 0 {
			t.Fatalf("data offset %d not aligned to %d", file.DataOffset, file.Alignment)
		}
	})
}

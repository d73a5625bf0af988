package gguf

import "fmt"

// TensorType is a ggml element type (F32, F16, Q4_0, ...).
type TensorType uint32

// The ggml tensor types that rbee writes or treats specially; the reader
// knows the rest by number.
const (
	TensorF32    TensorType = 0
	TensorF16    TensorType = 1
	TensorQ4_0   TensorType = 2
	TensorQ8_0   TensorType = 8
	TensorQ2_K   TensorType = 10
	TensorQ4_K   TensorType = 12
	TensorIQ4_NL TensorType = 20
	TensorBF16   TensorType = 30
)

// tensorTypeInfo is the name and block layout of a ggml type.
type tensorTypeInfo struct {
	name       string
	blockElems int64 // elements per block
	blockBytes int64 // bytes per block
}

// tensorTypes lists ggml types by number; gaps are types removed from ggml.
var tensorTypes = map[TensorType]tensorTypeInfo{
	0:  {"F32", 1, 4},
	1:  {"F16", 1, 2},
	2:  {"Q4_0", 32, 18},
	3:  {"Q4_1", 32, 20},
	6:  {"Q5_0", 32, 22},
	7:  {"Q5_1", 32, 24},
	8:  {"Q8_0", 32, 34},
	9:  {"Q8_1", 32, 36},
	10: {"Q2_K", 256, 84},
	11: {"Q3_K", 256, 110},
	12: {"Q4_K", 256, 144},
	13: {"Q5_K", 256, 176},
	14: {"Q6_K", 256, 210},
	15: {"Q8_K", 256, 292},
	16: {"IQ2_XXS", 256, 66},
	17: {"IQ2_XS", 256, 74},
	18: {"IQ3_XXS", 256, 98},
	19: {"IQ1_S", 256, 50},
	20: {"IQ4_NL", 32, 18},
	21: {"IQ3_S", 256, 110},
	22: {"IQ2_S", 256, 82},
	23: {"IQ4_XS", 256, 136},
	24: {"I8", 1, 1},
	25: {"I16", 1, 2},
	26: {"I32", 1, 4},
	27: {"I64", 1, 8},
	28: {"F64", 1, 8},
	29: {"IQ1_M", 256, 56},
	30: {"BF16", 1, 2},
	34: {"TQ1_0", 256, 54},
	35: {"TQ2_0", 256, 66},
	39: {"MXFP4", 32, 17},
}

// String returns the ggml name of the type ("Q4_0"), or "type(N)" if unknown.
func (t TensorType) String() string {
	if info, ok := tensorTypes[t]; ok {
		return info.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// Known reports whether the block layout of the type is known.
func (t TensorType) Known() bool {
	_, ok := tensorTypes[t]
	return ok
}

// BlockSize returns the number of elements per block and the bytes per block.
func (t TensorType) BlockSize() (elems, bytes int64) {
	info := tensorTypes[t]
	return info.blockElems, info.blockBytes
}

// RowsBytes returns the bytes that n elements of this type take, or -1 when
// the type is unknown or n is not a whole number of blocks.
func (t TensorType) RowsBytes(n int64) int64 {
	info, ok := tensorTypes[t]
	if !ok || n < 0 || n%info.blockElems != 0 {
		return -1
	}
	return n / info.blockElems * info.blockBytes
}

// FileType is the value of general.file_type: the dominant quantization of a
// model file, as llama.cpp numbers it (llama_ftype).
type FileType uint32

// File types written by the synth presets.
const (
	FileTypeAllF32    FileType = 0
	FileTypeMostlyF16 FileType = 1
	FileTypeMostlyQ40 FileType = 2
)

var fileTypeNames = map[FileType]string{
	0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
	10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
	16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S",
	22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M",
	28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0",
	37: "TQ2_0", 38: "MXFP4_MOE",
}

// String returns the llama.cpp name of the file type ("Q4_K_M"), or "file_type(N)".
func (t FileType) String() string {
	if s, ok := fileTypeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("file_type(%d)", uint32(t))
}

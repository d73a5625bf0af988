package gguf

import (
	"encoding/binary"
	"io"
	"math"
	"math/rand/v2"
	"strings"
)

// A model with small random weights gives nearly flat logits: sampling then
// picks byte-fallback tokens (invalid UTF-8 fragments) and control tokens as
// often as words, and EOS at random. For the tiny test and demo model the
// embedding and output matrices are shaped so the text looks like text:
//
//   - every token embedding has a constant 1 in dimension 0, so after the
//     final RMS norm that dimension carries a steady value, and the output
//     row of each token uses it as a per-token bias (words up; fragments,
//     bytes and control tokens far down);
//   - sentence-ending punctuation also has a 1 in dimension 1, and the EOS
//     row reads dimension 1, so generation tends to stop after a sentence.
//
// The other dimensions stay random, so the next token still depends on the
// context.
const (
	biasWord        = 3   // whole words from commonWords
	biasPiece       = -3  // other normal pieces (letters, word prefixes)
	biasNever       = -12 // byte, control and unknown tokens
	eosAfterEnd     = 4   // EOS logit right after ".", "!" or "?"
	shapedOutputStd = 0.6 // random part of the output rows: logit spread of about ±1.5
	carrierDim      = 0   // dimension holding the constant
	sentenceEndDim  = 1   // dimension flagging sentence-ending punctuation
)

// punctuationBias makes punctuation frequent enough that sentences end.
var punctuationBias = map[string]float32{".": 3, ",": 3, "!": 2, "?": 2}

// shapeVocab returns the logit bias of each token and which tokens end a sentence.
func shapeVocab(tokens []string, types []int32) (bias []float32, sentenceEnd []bool) {
	words := map[string]bool{}
	for _, w := range commonWords {
		words[spmSpace+w] = true
	}
	bias = make([]float32, len(tokens))
	sentenceEnd = make([]bool, len(tokens))
	for i, tok := range tokens {
		switch {
		case types[i] != tokenNormal:
			bias[i] = biasNever
		case words[tok]:
			bias[i] = biasWord
		case punctuationBias[tok] != 0:
			bias[i] = punctuationBias[tok]
			sentenceEnd[i] = strings.ContainsAny(tok, ".!?")
		default:
			bias[i] = biasPiece
		}
	}
	return bias, sentenceEnd
}

// normalized returns the approximate value a dimension set to 1 takes after
// RMS norm, when `ones` dimensions are 1 and the rest are random with weightStd.
func normalized(embd, ones int) float32 {
	return float32(math.Sqrt(float64(embd) / (float64(ones) + float64(embd-ones)*weightStd*weightStd)))
}

func randomFloats(seed int64, name string, n int, std float64) []float32 {
	rng := rand.New(tensorRand(seed, name))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * std)
	}
	return v
}

func writeF32(out io.Writer, v []float32) error {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	_, err := out.Write(b)
	return err
}

// shapedEmbedding writes token_embd.weight (rows of embd values per token).
func shapedEmbedding(seed int64, embd int, sentenceEnd []bool) TensorSource {
	return func(out io.Writer) error {
		v := randomFloats(seed, "token_embd.weight", embd*len(sentenceEnd), weightStd)
		for tok, end := range sentenceEnd {
			row := v[tok*embd : (tok+1)*embd]
			row[carrierDim] = 1
			row[sentenceEndDim] = 0
			if end {
				row[sentenceEndDim] = 1
			}
		}
		return writeF32(out, v)
	}
}

// shapedOutput writes output.weight: random rows plus the per-token bias read
// from the carrier dimension, and the EOS row's link to sentence ends.
func shapedOutput(seed int64, embd int, bias []float32) TensorSource {
	return func(out io.Writer) error {
		v := randomFloats(seed, "output.weight", embd*len(bias), shapedOutputStd)
		n1, n2 := normalized(embd, 1), normalized(embd, 2) // carrier after a word / after a sentence end
		for tok, b := range bias {
			row := v[tok*embd : (tok+1)*embd]
			row[carrierDim] = b / n1
			row[sentenceEndDim] = 0
		}
		eos := v[eosID*embd : (eosID+1)*embd]
		eos[sentenceEndDim] = (eosAfterEnd - bias[eosID]/n1*n2) / n2
		return writeF32(out, v)
	}
}

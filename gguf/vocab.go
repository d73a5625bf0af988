package gguf

import "fmt"

// Token types of tokenizer.ggml.token_type, as llama.cpp numbers them.
const (
	tokenNormal  int32 = 1
	tokenUnknown int32 = 2
	tokenControl int32 = 3
	tokenByte    int32 = 6
)

// Ids of the special tokens in every synth vocabulary.
const (
	unkID = 0
	bosID = 1
	eosID = 2
)

// spmSpace is the SentencePiece word-boundary marker that stands for a space.
const spmSpace = "▁"

// chatMLTemplate is the chat template stored in synth models (ChatML, which
// llama.cpp recognises by its <|im_start|> marker).
const chatMLTemplate = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

// commonWords seed the vocabulary so English text tokenizes into word pieces
// rather than single letters.
var commonWords = []string{
	"the", "and", "a", "to", "of", "was", "he", "she", "it", "in", "is", "that",
	"they", "her", "his", "with", "for", "on", "you", "I", "said", "had", "not",
	"but", "be", "at", "as", "so", "we", "all", "up", "one", "day", "there",
	"Once", "upon", "time", "The", "little", "girl", "boy", "named", "Lily",
	"Tim", "Ben", "Sue", "happy", "big", "very", "were", "saw", "play", "went",
	"friend", "friends", "wanted", "loved", "mom", "dog", "cat", "sun", "tree",
	"home", "park", "ball", "toy", "car", "bird", "fun", "good", "see", "can",
	"do", "what", "when", "then", "them", "this", "from", "out", "like", "go",
	"have", "are", "an", "my", "your", "no", "yes", "how", "about", "who",
	"will", "would", "could", "into", "more", "some", "other", "their", "time",
	"people", "first", "way", "make", "made", "look", "found", "came", "help",
}

// spmVocab builds a SentencePiece ("llama") vocabulary of exactly n tokens:
// <unk>, <s>, </s>, the 256 byte-fallback tokens <0x00>..<0xFF>, the ChatML
// control tokens, then single characters, prefixes of common words and
// generated letter pieces with descending scores.
func spmVocab(n int) (tokens []string, scores []float32, types []int32) {
	seen := map[string]bool{}
	add := func(tok string, score float32, typ int32) {
		if len(tokens) >= n || seen[tok] {
			return
		}
		seen[tok] = true
		tokens = append(tokens, tok)
		scores = append(scores, score)
		types = append(types, typ)
	}
	add("<unk>", 0, tokenUnknown)
	add("<s>", 0, tokenControl)
	add("</s>", 0, tokenControl)
	for b := 0; b < 256; b++ {
		add(fmt.Sprintf("<0x%02X>", b), 0, tokenByte)
	}
	add("<|im_start|>", 0, tokenControl)
	add("<|im_end|>", 0, tokenControl)

	score := float32(0)
	piece := func(p string) {
		if !seen[p] {
			score--
			add(p, score, tokenNormal)
		}
	}
	piece(spmSpace)
	for c := 'a'; c <= 'z'; c++ {
		piece(string(c))
	}
	for c := 'A'; c <= 'Z'; c++ {
		piece(string(c))
	}
	for _, c := range "0123456789.,!?'\"-:;()" {
		piece(string(c))
	}
	for _, w := range commonWords {
		full := []rune(spmSpace + w)
		for i := 2; i <= len(full); i++ {
			piece(string(full[:i]))
		}
	}
	// Fill the rest with letter pairs and triples, with and without the space marker.
	const letters = "etaoinshrdlcumwfgypbvkjxqz"
	for length := 2; len(tokens) < n; length++ {
		idx := make([]int, length)
		for {
			b := make([]byte, length)
			for i, j := range idx {
				b[i] = letters[j]
			}
			piece(spmSpace + string(b))
			piece(string(b))
			if len(tokens) >= n {
				break
			}
			// Next combination, last letter fastest.
			i := length - 1
			for i >= 0 {
				idx[i]++
				if idx[i] < len(letters) {
					break
				}
				idx[i] = 0
				i--
			}
			if i < 0 {
				break
			}
		}
	}
	return tokens, scores, types
}

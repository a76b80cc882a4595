package synth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Special tokens of the synthetic tokenizer, placed after the BPE vocabulary.
const (
	BeginOfText = "<|begin_of_text|>"
	EndOfText   = "<|end_of_text|>"
	IMStart     = "<|im_start|>"
	IMEnd       = "<|im_end|>"
)

var specialTokens = []string{BeginOfText, EndOfText, IMStart, IMEnd}

// minVocab is the 256 byte tokens plus the special tokens.
const minVocab = 256 + 4

// ChatTemplate is the ChatML template the synthetic tokenizer ships.
const ChatTemplate = "{% for message in messages %}" +
	"{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
	"{% endfor %}" +
	"{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

// splitPattern is Llama 3's pre-tokenizer regex, written into tokenizer.json.
const splitPattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

// trainSplit approximates splitPattern without the lookahead RE2 lacks; it
// only shapes which merges are learned, never how text is encoded.
var trainSplit = regexp.MustCompile(`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\pL\pN]?\pL+|\pN{1,3}| ?[^\s\pL\pN]+[\r\n]*|\s*[\r\n]+|\s+`)

// byteRunes is GPT-2's byte→printable-rune table used by ByteLevel.
var byteRunes = func() [256]rune {
	var t [256]rune
	n := 0
	for b := range 256 {
		if b >= '!' && b <= '~' || b >= 0xa1 && b <= 0xac || b >= 0xae {
			t[b] = rune(b)
		} else {
			t[b] = rune(256 + n)
			n++
		}
	}
	return t
}()

func byteLevel(s string) string {
	var sb strings.Builder
	for i := range len(s) {
		sb.WriteRune(byteRunes[s[i]])
	}
	return sb.String()
}

// bpe is a learned byte-level BPE vocabulary.
type bpe struct {
	tokens []string    // id -> token (byte-level runes)
	merges [][2]string // in rank order
}

// newBPE builds a vocabulary of exactly n BPE tokens (256 bytes plus
// n−256 merges): merges learned from the corpus first, then synthetic ones
// that extend word-like tokens letter by letter until n is reached.
func newBPE(n int) *bpe {
	b := &bpe{}
	have := make(map[string]bool)
	for _, r := range byteRunes {
		b.tokens = append(b.tokens, string(r))
		have[string(r)] = true
	}
	addMerge := func(x, y string) {
		b.merges = append(b.merges, [2]string{x, y})
		b.tokens = append(b.tokens, x+y)
		have[x+y] = true
	}

	// Learn merges greedily from the corpus words.
	freq := make(map[string]int)
	for _, w := range trainSplit.FindAllString(corpus, -1) {
		freq[byteLevel(w)]++
	}
	var words [][]string
	var counts []int
	for _, w := range slices.Sorted(maps.Keys(freq)) {
		var syms []string
		for _, r := range w {
			syms = append(syms, string(r))
		}
		words, counts = append(words, syms), append(counts, freq[w])
	}
	for len(b.tokens) < n {
		pairs := make(map[[2]string]int)
		for i, w := range words {
			for j := 0; j+1 < len(w); j++ {
				pairs[[2]string{w[j], w[j+1]}] += counts[i]
			}
		}
		best, bestN := [2]string{}, 1
		for p, c := range pairs {
			if c > bestN || c == bestN && c > 1 && (p[0] < best[0] || p[0] == best[0] && p[1] < best[1]) {
				best, bestN = p, c
			}
		}
		if bestN < 2 {
			break
		}
		if !have[best[0]+best[1]] { // another merge may already have made it
			addMerge(best[0], best[1])
		}
		for i, w := range words {
			words[i] = mergeWord(w, best)
		}
	}

	// Extend word-like tokens (an optional leading space, then lower-case
	// letters) by one letter at a time, most frequent letters first.
	const letters = "etaoinshrdlcumwfgypbvkjxqz"
	space := string(byteRunes[' '])
	for from := 0; len(b.tokens) < n; {
		to := len(b.tokens)
		for id := from; id < to && len(b.tokens) < n; id++ {
			t := b.tokens[id]
			if !wordLike(t, space) {
				continue
			}
			for _, c := range letters {
				if len(b.tokens) == n {
					break
				}
				if !have[t+string(c)] {
					addMerge(t, string(c))
				}
			}
		}
		if len(b.tokens) == to {
			break // cannot happen for any vocabulary the engine accepts
		}
		from = to
	}
	return b
}

func wordLike(t, space string) bool {
	t = strings.TrimPrefix(t, space)
	if t == "" {
		return true // the bare space starts words
	}
	for _, r := range t {
		if r < 'a' || r > 'z' {
			return false
		}
	}
	return true
}

func mergeWord(w []string, p [2]string) []string {
	out := w[:0:0]
	for i := 0; i < len(w); i++ {
		if i+1 < len(w) && w[i] == p[0] && w[i+1] == p[1] {
			out = append(out, p[0]+p[1])
			i++
			continue
		}
		out = append(out, w[i])
	}
	return out
}

// tokenizerJSON renders tokenizer.json in the Llama 3 layout: added special
// tokens, Split+ByteLevel pre-tokenizer, a BOS-prepending post-processor and
// a ByteLevel decoder.
func tokenizerJSON(b *bpe) ([]byte, error) {
	first := len(b.tokens) // id of the first special token
	type added struct {
		ID         int    `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		LStrip     bool   `json:"lstrip"`
		RStrip     bool   `json:"rstrip"`
		Normalized bool   `json:"normalized"`
		Special    bool   `json:"special"`
	}
	var addedTokens []added
	for i, s := range specialTokens {
		addedTokens = append(addedTokens, added{ID: first + i, Content: s, Special: true})
	}
	var vocab bytes.Buffer // written in id order, as the tokenizers library does
	vocab.WriteByte('{')
	for id, t := range b.tokens {
		if id > 0 {
			vocab.WriteByte(',')
		}
		k, _ := json.Marshal(t)
		fmt.Fprintf(&vocab, "%s:%d", k, id)
	}
	vocab.WriteByte('}')
	merges := make([]string, len(b.merges))
	for i, m := range b.merges {
		merges[i] = m[0] + " " + m[1]
	}
	byteLevelCfg := func(prefix bool) map[string]any {
		return map[string]any{"type": "ByteLevel", "add_prefix_space": prefix, "trim_offsets": true, "use_regex": false}
	}
	doc := map[string]any{
		"version":      "1.0",
		"truncation":   nil,
		"padding":      nil,
		"added_tokens": addedTokens,
		"normalizer":   nil,
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]string{"Regex": splitPattern}, "behavior": "Isolated", "invert": false},
			byteLevelCfg(false),
		}},
		"post_processor": map[string]any{
			"type": "TemplateProcessing",
			"single": []any{
				map[string]any{"SpecialToken": map[string]any{"id": BeginOfText, "type_id": 0}},
				map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}},
			},
			"pair": []any{
				map[string]any{"SpecialToken": map[string]any{"id": BeginOfText, "type_id": 0}},
				map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}},
				map[string]any{"SpecialToken": map[string]any{"id": BeginOfText, "type_id": 1}},
				map[string]any{"Sequence": map[string]any{"id": "B", "type_id": 1}},
			},
			"special_tokens": map[string]any{
				BeginOfText: map[string]any{"id": BeginOfText, "ids": []int{first}, "tokens": []string{BeginOfText}},
			},
		},
		"decoder": byteLevelCfg(true),
		"model": map[string]any{
			"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": nil, "end_of_word_suffix": nil,
			"fuse_unk": false, "byte_fallback": false, "ignore_merges": true,
			"vocab":  json.RawMessage(vocab.Bytes()),
			"merges": merges,
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

// tokenizerConfigJSON renders tokenizer_config.json with the chat template.
func tokenizerConfigJSON(first, maxPos int) ([]byte, error) {
	decoder := make(map[string]any)
	for i, s := range specialTokens {
		decoder[fmt.Sprint(first+i)] = map[string]any{
			"content": s, "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true,
		}
	}
	return json.MarshalIndent(map[string]any{
		"added_tokens_decoder":         decoder,
		"bos_token":                    BeginOfText,
		"eos_token":                    IMEnd,
		"pad_token":                    EndOfText,
		"chat_template":                ChatTemplate,
		"clean_up_tokenization_spaces": false,
		"model_input_names":            []string{"input_ids", "attention_mask"},
		"model_max_length":             maxPos,
		"tokenizer_class":              "PreTrainedTokenizerFast",
	}, "", "  ")
}

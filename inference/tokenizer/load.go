package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// fileJSON mirrors the parts of the tokenizers library's serialization we use.
type fileJSON struct {
	AddedTokens   []addedJSON     `json:"added_tokens"`
	Normalizer    *component      `json:"normalizer"`
	PreTokenizer  *component      `json:"pre_tokenizer"`
	PostProcessor *component      `json:"post_processor"`
	Decoder       *component      `json:"decoder"`
	Model         json.RawMessage `json:"model"`
}

type addedJSON struct {
	ID         int32  `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

type modelJSON struct {
	Type                    string           `json:"type"`
	UnkToken                *string          `json:"unk_token"`
	ContinuingSubwordPrefix *string          `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string          `json:"end_of_word_suffix"`
	FuseUnk                 bool             `json:"fuse_unk"`
	ByteFallback            bool             `json:"byte_fallback"`
	IgnoreMerges            bool             `json:"ignore_merges"`
	Vocab                   map[string]int32 `json:"vocab"`
	Merges                  json.RawMessage  `json:"merges"`
}

// component is any normalizer, pre-tokenizer, post-processor or decoder; the
// "type" field says which of the other fields apply.
type component struct {
	Type          string       `json:"type"`
	Normalizers   []*component `json:"normalizers"`
	Pretokenizers []*component `json:"pretokenizers"`
	Decoders      []*component `json:"decoders"`
	Processors    []*component `json:"processors"`
	Prepend       string       `json:"prepend"`
	Pattern       struct {
		String *string `json:"String"`
		Regex  *string `json:"Regex"`
	} `json:"pattern"`
	Content          string  `json:"content"`
	Behavior         string  `json:"behavior"`
	Invert           bool    `json:"invert"`
	Replacement      string  `json:"replacement"`
	PrependScheme    string  `json:"prepend_scheme"`
	AddPrefixSpace   *bool   `json:"add_prefix_space"`
	Split            *bool   `json:"split"`
	UseRegex         *bool   `json:"use_regex"`
	IndividualDigits bool    `json:"individual_digits"`
	Start            int     `json:"start"`
	Stop             int     `json:"stop"`
	Single           []piece `json:"single"`
	SpecialTokens    map[string]struct {
		IDs []int32 `json:"ids"`
	} `json:"special_tokens"`
}

// piece is one element of a TemplateProcessing template.
type piece struct {
	SpecialToken *struct {
		ID string `json:"id"`
	} `json:"SpecialToken"`
	Sequence *struct {
		ID string `json:"id"`
	} `json:"Sequence"`
}

// configJSON holds the tokenizer_config.json fields we use.
type configJSON struct {
	AddBOS       *bool                `json:"add_bos_token"`
	AddEOS       *bool                `json:"add_eos_token"`
	BOS          tokenName            `json:"bos_token"`
	EOS          tokenName            `json:"eos_token"`
	UNK          tokenName            `json:"unk_token"`
	PAD          tokenName            `json:"pad_token"`
	ChatTemplate json.RawMessage      `json:"chat_template"`
	AddedDecoder map[string]addedJSON `json:"added_tokens_decoder"`
}

// tokenName accepts a token given as a string, an AddedToken dict or null.
type tokenName string

func (t *tokenName) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*t = tokenName(s)
		return nil
	}
	var d struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return err
	}
	*t = tokenName(d.Content)
	return nil
}

// idList accepts an int, a list of ints or null.
type idList []int32

func (l *idList) UnmarshalJSON(b []byte) error {
	var one *int32
	if err := json.Unmarshal(b, &one); err == nil {
		if one != nil {
			*l = idList{*one}
		}
		return nil
	}
	var many []int32
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*l = many
	return nil
}

type generationJSON struct {
	BOS idList `json:"bos_token_id"`
	EOS idList `json:"eos_token_id"`
}

// Load reads tokenizer.json from dir together with tokenizer_config.json,
// generation_config.json, special_tokens_map.json and chat_template.jinja
// when they are present.
func Load(dir string) (*Tokenizer, error) {
	path := filepath.Join(dir, "tokenizer.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w (the model directory needs a Hugging Face fast-tokenizer tokenizer.json)", err)
	}
	var cfg configJSON
	cfgPath := filepath.Join(dir, "tokenizer_config.json")
	if err := readOptionalJSON(cfgPath, &cfg); err != nil {
		return nil, err
	}
	var gen generationJSON
	if err := readOptionalJSON(filepath.Join(dir, "generation_config.json"), &gen); err != nil {
		return nil, err
	}
	var stm struct {
		BOS tokenName `json:"bos_token"`
		EOS tokenName `json:"eos_token"`
		UNK tokenName `json:"unk_token"`
		PAD tokenName `json:"pad_token"`
	}
	if err := readOptionalJSON(filepath.Join(dir, "special_tokens_map.json"), &stm); err != nil {
		return nil, err
	}
	t, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// tokenizer_config.json may name added tokens the tokenizer.json lacks.
	for k, a := range cfg.AddedDecoder {
		id, err := strconv.Atoi(k)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("%s: added_tokens_decoder key %q is not a token id: %w", cfgPath, k, ErrFormat)
		}
		if id < len(t.pieces) && t.pieces[id] == a.Content {
			continue
		}
		a.ID = int32(id)
		if err := t.addAdded(a); err != nil {
			return nil, fmt.Errorf("%s: %w", cfgPath, err)
		}
	}
	t.indexAdded()

	pick := func(a, b tokenName) string {
		if a != "" {
			return string(a)
		}
		return string(b)
	}
	t.specials = map[string]string{}
	for k, v := range map[string]string{
		"bos_token": pick(cfg.BOS, stm.BOS), "eos_token": pick(cfg.EOS, stm.EOS),
		"unk_token": pick(cfg.UNK, stm.UNK), "pad_token": pick(cfg.PAD, stm.PAD),
	} {
		if v != "" {
			t.specials[k] = v
		}
	}

	t.bos = -1
	if id, ok := t.vocab[t.specials["bos_token"]]; ok {
		t.bos = id
	} else if len(gen.BOS) > 0 {
		t.bos = gen.BOS[0]
	}
	t.eos = append(t.eos, gen.EOS...)
	if id, ok := t.vocab[t.specials["eos_token"]]; ok && !containsID(t.eos, id) {
		t.eos = append(t.eos, id)
	}
	// add_bos_token/add_eos_token in tokenizer_config.json override the
	// post-processor, as transformers' Llama tokenizers rebuild it from them.
	if cfg.AddBOS != nil || cfg.AddEOS != nil {
		t.prefix, t.suffix = nil, nil
		if cfg.AddBOS != nil && *cfg.AddBOS && t.bos >= 0 {
			t.prefix = []int32{t.bos}
		}
		if cfg.AddEOS != nil && *cfg.AddEOS {
			if id, ok := t.vocab[t.specials["eos_token"]]; ok {
				t.suffix = []int32{id}
			}
		}
	}

	tmpl, err := chatTemplate(cfg.ChatTemplate, dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfgPath, err)
	}
	t.chatTemplate = tmpl
	return t, nil
}

func containsID(ids []int32, id int32) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func readOptionalJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("tokenizer: %s: %w: %v", path, ErrFormat, err)
	}
	return nil
}

// chatTemplate picks the template from tokenizer_config.json (a string, or
// a list of named templates where "default" wins) or, failing that, from
// chat_template.jinja or chat_template.json in dir.
func chatTemplate(raw json.RawMessage, dir string) (string, error) {
	if len(raw) > 0 && string(raw) != "null" {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			return s, nil
		}
		var list []struct {
			Name     string `json:"name"`
			Template string `json:"template"`
		}
		if err := json.Unmarshal(raw, &list); err != nil {
			return "", fmt.Errorf("chat_template is neither a string nor a list of {name, template}: %w", ErrFormat)
		}
		for _, e := range list {
			if e.Name == "default" {
				return e.Template, nil
			}
		}
		if len(list) > 0 {
			return list[0].Template, nil
		}
		return "", nil
	}
	if b, err := os.ReadFile(filepath.Join(dir, "chat_template.jinja")); err == nil {
		return string(b), nil
	}
	var j struct {
		ChatTemplate string `json:"chat_template"`
	}
	if err := readOptionalJSON(filepath.Join(dir, "chat_template.json"), &j); err != nil {
		return "", err
	}
	return j.ChatTemplate, nil
}

// Parse builds a tokenizer from the bytes of a tokenizer.json alone (no
// config files: no chat template, BOS/EOS from the post-processor only).
func Parse(b []byte) (*Tokenizer, error) {
	t, err := parse(b)
	if err != nil {
		return nil, err
	}
	t.indexAdded()
	t.bos = -1
	if len(t.prefix) > 0 {
		t.bos = t.prefix[0]
	}
	t.specials = map[string]string{}
	return t, nil
}

func parse(b []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(f.Model, &head); err != nil {
		return nil, fmt.Errorf("%w: model: %v", ErrFormat, err)
	}
	if head.Type != "BPE" && head.Type != "" {
		return nil, fmt.Errorf("%w: model type %q (only BPE tokenizers are supported)", ErrUnsupported, head.Type)
	}
	var m modelJSON
	if err := json.Unmarshal(f.Model, &m); err != nil {
		return nil, fmt.Errorf("%w: model: %v", ErrFormat, err)
	}
	if (m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "") || (m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "") {
		return nil, fmt.Errorf("%w: BPE with continuing_subword_prefix or end_of_word_suffix", ErrUnsupported)
	}
	if len(m.Vocab) == 0 {
		return nil, fmt.Errorf("%w: model.vocab is empty", ErrFormat)
	}
	t := &Tokenizer{vocab: make(map[string]int32, len(m.Vocab)+len(f.AddedTokens)), unk: -1,
		byteFallback: m.ByteFallback, fuseUnk: m.FuseUnk, ignoreMerges: m.IgnoreMerges}
	size := 0
	for tok, id := range m.Vocab {
		if id < 0 || id > 1<<26 {
			return nil, fmt.Errorf("%w: token %q has id %d out of range", ErrFormat, tok, id)
		}
		size = max(size, int(id)+1)
	}
	t.pieces = make([]string, size)
	for tok, id := range m.Vocab {
		t.vocab[tok] = id
		t.pieces[id] = tok
	}
	t.nModel = size
	if m.UnkToken != nil {
		id, ok := t.vocab[*m.UnkToken]
		if !ok {
			return nil, fmt.Errorf("%w: unk_token %q is not in the vocab", ErrFormat, *m.UnkToken)
		}
		t.unk = id
	}
	if err := t.parseMerges(m.Merges); err != nil {
		return nil, err
	}
	for _, a := range f.AddedTokens {
		if err := t.addAdded(a); err != nil {
			return nil, err
		}
	}
	if err := t.parseNormalizer(f.Normalizer); err != nil {
		return nil, err
	}
	if err := t.parsePreTokenizer(f.PreTokenizer); err != nil {
		return nil, err
	}
	if err := t.parseDecoder(f.Decoder); err != nil {
		return nil, err
	}
	if err := t.parsePost(f.PostProcessor); err != nil {
		return nil, err
	}
	// A byte-level vocabulary spells bytes with the GPT-2 table, so the model
	// is byte-level even when only the decoder says so.
	if t.byteLevel {
		for b := 0; b < 256; b++ {
			id, ok := t.vocab[string(byteToRune[b])]
			if !ok {
				id = t.unk
			}
			t.byteID[b] = id
		}
	}
	for b := 0; b < 256; b++ {
		t.fallbackID[b] = -1
		if id, ok := t.vocab[fmt.Sprintf("<0x%02X>", b)]; ok && t.byteFallback {
			t.fallbackID[b] = id
		}
	}
	t.addMarkSplit()
	for r := range t.asciiID {
		t.asciiID[r] = -1
		if id, ok := t.vocab[string(rune(r))]; ok {
			t.asciiID[r] = id
		}
	}
	return t, nil
}

// parseMerges reads merges in either encoding: ["a b", ...] (legacy) or
// [["a", "b"], ...] (tokenizers 0.20+).
func (t *Tokenizer) parseMerges(raw json.RawMessage) error {
	var pairs [][2]string
	var legacy []string
	if len(raw) == 0 || string(raw) == "null" {
		raw = json.RawMessage("[]")
	}
	if err := json.Unmarshal(raw, &legacy); err == nil {
		pairs = make([][2]string, len(legacy))
		for i, s := range legacy {
			a, b, ok := strings.Cut(s, " ")
			if !ok || strings.Contains(b, " ") {
				return fmt.Errorf("%w: merge %d %q is not two space-separated tokens", ErrFormat, i, s)
			}
			pairs[i] = [2]string{a, b}
		}
	} else {
		var lists [][]string
		if err := json.Unmarshal(raw, &lists); err != nil {
			return fmt.Errorf("%w: merges are neither [\"a b\", ...] nor [[\"a\", \"b\"], ...]: %v", ErrFormat, err)
		}
		pairs = make([][2]string, len(lists))
		for i, l := range lists {
			if len(l) != 2 {
				return fmt.Errorf("%w: merge %d has %d parts, want 2", ErrFormat, i, len(l))
			}
			pairs[i] = [2]string{l[0], l[1]}
		}
	}
	t.merges = newMergeTable(len(pairs))
	for rank, p := range pairs {
		ia, okA := t.vocab[p[0]]
		ib, okB := t.vocab[p[1]]
		im, okM := t.vocab[p[0]+p[1]]
		if !okA || !okB || !okM {
			return fmt.Errorf("%w: merge %d (%q, %q) names a token that is not in the vocab", ErrFormat, rank, p[0], p[1])
		}
		t.merges.put(pairKey(ia, ib), merge{rank: int32(rank), id: im})
	}
	return nil
}

func (t *Tokenizer) addAdded(a addedJSON) error {
	if a.ID < 0 || a.ID > 1<<26 {
		return fmt.Errorf("%w: added token %q has id %d out of range", ErrFormat, a.Content, a.ID)
	}
	if a.Content == "" {
		return fmt.Errorf("%w: added token %d has empty content", ErrFormat, a.ID)
	}
	for int(a.ID) >= len(t.pieces) {
		t.pieces = append(t.pieces, "")
	}
	t.pieces[a.ID] = a.Content
	if _, ok := t.vocab[a.Content]; !ok || int(a.ID) >= t.nModel {
		t.vocab[a.Content] = a.ID
	}
	for i := range t.added {
		if t.added[i].id == a.ID {
			t.added[i] = addedToken{id: a.ID, content: a.Content, lstrip: a.LStrip, rstrip: a.RStrip, singleWord: a.SingleWord, special: a.Special}
			return nil
		}
	}
	t.added = append(t.added, addedToken{id: a.ID, content: a.Content, lstrip: a.LStrip, rstrip: a.RStrip, singleWord: a.SingleWord, special: a.Special})
	return nil
}

// indexAdded groups added tokens by first byte, longest first, so matching
// at a position tries few candidates and prefers the longest; it then
// builds the per-id decode tables, so it runs once all tokens are known.
func (t *Tokenizer) indexAdded() {
	sort.SliceStable(t.added, func(i, j int) bool { return len(t.added[i].content) > len(t.added[j].content) })
	for i := range t.addedByByte {
		t.addedByByte[i] = nil
	}
	for i, a := range t.added {
		c := a.content[0]
		t.addedByByte[c] = append(t.addedByByte[c], int32(i))
	}
	for len(t.special) < len(t.pieces) {
		t.special = append(t.special, false)
	}
	for _, a := range t.added {
		t.special[a.id] = a.special
	}
	t.buildBytes()
}

func (t *Tokenizer) parseNormalizer(c *component) error {
	if c == nil {
		return nil
	}
	switch c.Type {
	case "Sequence":
		for _, n := range c.Normalizers {
			if err := t.parseNormalizer(n); err != nil {
				return err
			}
		}
	case "Prepend":
		t.norm = append(t.norm, normStep{kind: normPrepend, a: c.Prepend})
	case "Replace":
		if c.Pattern.String == nil {
			return fmt.Errorf("%w: normalizer Replace with a regex pattern", ErrUnsupported)
		}
		t.norm = append(t.norm, normStep{kind: normReplace, a: *c.Pattern.String, b: c.Content})
	case "NFC":
		t.norm = append(t.norm, normStep{kind: normNFC})
	case "NFKC":
		t.norm = append(t.norm, normStep{kind: normNFKC})
	case "Lowercase":
		t.norm = append(t.norm, normStep{kind: normLower})
	default:
		return fmt.Errorf("%w: normalizer %q", ErrUnsupported, c.Type)
	}
	return nil
}

func (t *Tokenizer) parsePreTokenizer(c *component) error {
	if c == nil {
		return nil
	}
	switch c.Type {
	case "Sequence":
		for _, p := range c.Pretokenizers {
			if err := t.parsePreTokenizer(p); err != nil {
				return err
			}
		}
	case "Metaspace":
		t.metaspace = true
		t.metaRepl = c.Replacement
		if t.metaRepl == "" {
			t.metaRepl = "▁"
		}
		switch c.PrependScheme {
		case "always", "first", "never":
			t.metaPrepend = c.PrependScheme
		case "":
			t.metaPrepend = "always"
			if c.AddPrefixSpace != nil && !*c.AddPrefixSpace {
				t.metaPrepend = "never"
			}
		default:
			return fmt.Errorf("%w: Metaspace prepend_scheme %q", ErrUnsupported, c.PrependScheme)
		}
		if c.Split == nil || *c.Split {
			t.splits = append(t.splits, splitStep{kind: splitMeta, mark: t.metaRepl})
		}
	case "ByteLevel":
		t.byteLevel = true
		if c.AddPrefixSpace != nil && *c.AddPrefixSpace {
			t.prefixSpace = true
		}
		if c.UseRegex == nil || *c.UseRegex {
			s, err := newSplitter(gpt2Pattern)
			if err != nil {
				return err
			}
			t.splits = append(t.splits, splitStep{kind: splitRegex, re: s})
		}
	case "Split":
		if c.Invert {
			return fmt.Errorf("%w: pre-tokenizer Split with invert", ErrUnsupported)
		}
		var s *splitter
		var err error
		switch {
		case c.Pattern.Regex != nil:
			s, err = newSplitter(*c.Pattern.Regex)
		case c.Pattern.String != nil && *c.Pattern.String != "":
			s, err = newSplitter(regexpQuote(*c.Pattern.String))
		default:
			err = fmt.Errorf("%w: pre-tokenizer Split without a pattern", ErrFormat)
		}
		if err != nil {
			return err
		}
		var k splitKind
		switch c.Behavior {
		case "Isolated":
			k = splitRegex
		case "Removed":
			k = splitRegexRemoved
		default:
			return fmt.Errorf("%w: pre-tokenizer Split behavior %q", ErrUnsupported, c.Behavior)
		}
		t.splits = append(t.splits, splitStep{kind: k, re: s})
	case "Digits":
		t.splits = append(t.splits, splitStep{kind: splitDigits, individual: c.IndividualDigits})
	default:
		return fmt.Errorf("%w: pre-tokenizer %q", ErrUnsupported, c.Type)
	}
	return nil
}

func (t *Tokenizer) parseDecoder(c *component) error {
	if c == nil {
		return nil
	}
	switch c.Type {
	case "Sequence":
		for _, d := range c.Decoders {
			if err := t.parseDecoder(d); err != nil {
				return err
			}
		}
	case "Replace":
		if c.Pattern.String == nil || c.Content != " " {
			return fmt.Errorf("%w: decoder Replace other than \"▁\" -> \" \"", ErrUnsupported)
		}
		t.decSpace = *c.Pattern.String
	case "ByteFallback":
		t.decByteFallback = true
	case "Fuse":
	case "Strip":
		if c.Content != " " || c.Stop != 0 {
			return fmt.Errorf("%w: decoder Strip other than leading spaces", ErrUnsupported)
		}
		t.decStrip = c.Start
	case "Metaspace":
		t.decSpace = c.Replacement
		if t.decSpace == "" {
			t.decSpace = "▁"
		}
		if c.PrependScheme != "never" && (c.AddPrefixSpace == nil || *c.AddPrefixSpace) {
			t.decStrip = 1
		}
	case "ByteLevel":
		t.byteLevel = true
	default:
		return fmt.Errorf("%w: decoder %q", ErrUnsupported, c.Type)
	}
	return nil
}

func (t *Tokenizer) parsePost(c *component) error {
	if c == nil {
		return nil
	}
	switch c.Type {
	case "Sequence":
		for _, p := range c.Processors {
			if err := t.parsePost(p); err != nil {
				return err
			}
		}
	case "ByteLevel":
	case "TemplateProcessing":
		seen := false
		for _, p := range c.Single {
			switch {
			case p.Sequence != nil:
				seen = true
			case p.SpecialToken != nil:
				st, ok := c.SpecialTokens[p.SpecialToken.ID]
				if !ok {
					return fmt.Errorf("%w: post_processor names special token %q it does not define", ErrFormat, p.SpecialToken.ID)
				}
				if seen {
					t.suffix = append(t.suffix, st.IDs...)
				} else {
					t.prefix = append(t.prefix, st.IDs...)
				}
			}
		}
	default:
		return fmt.Errorf("%w: post_processor %q", ErrUnsupported, c.Type)
	}
	return nil
}

// buildBytes precomputes the bytes each id decodes to and which ids are
// byte-fallback pieces.
func (t *Tokenizer) buildBytes() {
	t.tokBytes = make([][]byte, len(t.pieces))
	t.tokStr = make([]string, len(t.pieces))
	t.tokValid = make([]bool, len(t.pieces))
	t.byteVal = make([]int16, len(t.pieces))
	defer func() {
		for id, b := range t.tokBytes {
			t.tokStr[id] = string(b)
			t.tokValid[id] = utf8.Valid(b)
		}
	}()
	for id, p := range t.pieces {
		t.byteVal[id] = -1
		if p == "" {
			continue
		}
		if t.byteLevel {
			t.tokBytes[id] = byteLevelBytes(p)
			continue
		}
		if t.decByteFallback && len(p) == 6 && strings.HasPrefix(p, "<0x") && p[5] == '>' {
			if v, err := strconv.ParseUint(p[3:5], 16, 8); err == nil {
				t.byteVal[id] = int16(v)
				t.tokBytes[id] = []byte{byte(v)}
				continue
			}
		}
		if t.decSpace != "" {
			p = strings.ReplaceAll(p, t.decSpace, " ")
		}
		t.tokBytes[id] = []byte(p)
	}
}

// byteLevelBytes maps a byte-level token back to its bytes; a token with a
// rune outside the table decodes to its own UTF-8, as the reference does.
func byteLevelBytes(p string) []byte {
	out := make([]byte, 0, len(p))
	for _, r := range p {
		b, ok := runeToByte[r]
		if !ok {
			return []byte(p)
		}
		out = append(out, b)
	}
	return out
}

// regexpQuote escapes s for the regex engines (both accept \-escapes of
// ASCII punctuation).
func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < utf8.RuneSelf && strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// addMarkSplit speeds up SentencePiece-style BPE, which sees a whole text
// segment as one word, with an exact shortcut: when no vocab token has the
// space mark right after another character (only leading marks or runs of
// marks), no merge can cross the boundary before such a mark, so the segment
// can be split there and each short piece merged on its own.
func (t *Tokenizer) addMarkSplit() {
	mark := t.metaRepl
	for _, n := range t.norm {
		if n.kind == normReplace && n.a == " " {
			mark = n.b
		}
	}
	if t.byteLevel || mark == "" {
		return
	}
	for tok := range t.vocab {
		for i := 1; i < len(tok); i++ {
			if strings.HasPrefix(tok[i:], mark) && !strings.HasSuffix(tok[:i], mark) {
				return
			}
		}
	}
	t.splits = append(t.splits, splitStep{kind: splitMark, mark: mark})
}

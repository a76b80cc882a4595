package dataset

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Sentinel errors; every returned error wraps one of them.
var (
	// ErrInvalid marks a malformed training file or example.
	ErrInvalid = errors.New("invalid training data")
	// ErrNoTrainableTokens means no example has a single token to learn from.
	ErrNoTrainableTokens = errors.New("no trainable tokens")
	// ErrTooLong marks an example longer than the configured limit.
	ErrTooLong = errors.New("example too long")
)

// Format is the shape of a training file; all lines of a file share one.
type Format int

// The formats OpenAI's fine-tuning API accepts for supervised training.
const (
	FormatUnknown Format = iota
	FormatChat
	FormatCompletion
)

func (f Format) String() string {
	switch f {
	case FormatChat:
		return "chat"
	case FormatCompletion:
		return "prompt-completion"
	}
	return "unknown"
}

// Message is one chat turn. Weight applies to assistant turns only: 0 means
// the turn is context, not trained on.
type Message struct {
	Role    string
	Content string
	Weight  int
}

// Record is one parsed, validated line of a training file.
type Record struct {
	Line       int // 1-based line number in the file
	Format     Format
	Messages   []Message // FormatChat
	Prompt     string    // FormatCompletion
	Completion string    // FormatCompletion
}

// wire types: pointers distinguish a missing field from an empty one.
type wireLine struct {
	Messages   *[]wireMessage  `json:"messages"`
	Prompt     *string         `json:"prompt"`
	Completion *string         `json:"completion"`
	Tools      json.RawMessage `json:"tools"`
}

type wireMessage struct {
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	Weight    *json.Number    `json:"weight"`
	ToolCalls json.RawMessage `json:"tool_calls"`
}

type contentPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// ParseLine parses one JSONL line into a Record (Line is left zero). It
// accepts the chat form {"messages":[...]} and the legacy
// {"prompt":...,"completion":...} form.
func ParseLine(b []byte) (Record, error) {
	var w wireLine
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		return Record{}, fmt.Errorf("%w: not a JSON object: %v", ErrInvalid, err)
	}
	if dec.More() {
		return Record{}, fmt.Errorf("%w: more than one JSON value on the line; put one example per line", ErrInvalid)
	}
	switch {
	case w.Messages != nil && (w.Prompt != nil || w.Completion != nil):
		return Record{}, fmt.Errorf("%w: a line has either \"messages\" or \"prompt\"/\"completion\", not both", ErrInvalid)
	case w.Messages != nil:
		return parseChat(w)
	case w.Prompt != nil || w.Completion != nil:
		return parseCompletion(w)
	}
	return Record{}, fmt.Errorf("%w: expected an object with \"messages\" (chat) or \"prompt\" and \"completion\"", ErrInvalid)
}

func parseCompletion(w wireLine) (Record, error) {
	if w.Prompt == nil {
		return Record{}, fmt.Errorf("%w: missing \"prompt\"", ErrInvalid)
	}
	if w.Completion == nil || *w.Completion == "" {
		return Record{}, fmt.Errorf("%w: missing or empty \"completion\": it is the text the model learns", ErrInvalid)
	}
	return Record{Format: FormatCompletion, Prompt: *w.Prompt, Completion: *w.Completion}, nil
}

func parseChat(w wireLine) (Record, error) {
	if len(w.Tools) > 0 && !bytes.Equal(bytes.TrimSpace(w.Tools), []byte("null")) && !bytes.Equal(bytes.TrimSpace(w.Tools), []byte("[]")) {
		return Record{}, fmt.Errorf("%w: \"tools\" are not supported for training; remove them", ErrInvalid)
	}
	msgs := *w.Messages
	if len(msgs) == 0 {
		return Record{}, fmt.Errorf("%w: \"messages\" is empty", ErrInvalid)
	}
	rec := Record{Format: FormatChat, Messages: make([]Message, 0, len(msgs))}
	assistants := 0
	for i, m := range msgs {
		msg, err := parseMessage(m)
		if err != nil {
			return Record{}, fmt.Errorf("messages[%d]: %w", i, err)
		}
		if msg.Role == "assistant" {
			assistants++
		}
		rec.Messages = append(rec.Messages, msg)
	}
	if assistants == 0 {
		return Record{}, fmt.Errorf("%w: no assistant message: every example needs at least one assistant turn to learn", ErrInvalid)
	}
	return rec, nil
}

func parseMessage(m wireMessage) (Message, error) {
	switch m.Role {
	case "system", "developer", "user", "assistant":
	case "":
		return Message{}, fmt.Errorf("%w: missing \"role\"", ErrInvalid)
	case "tool", "function":
		return Message{}, fmt.Errorf("%w: role %q is not supported for training; use system, developer, user or assistant", ErrInvalid, m.Role)
	default:
		return Message{}, fmt.Errorf("%w: unknown role %q; use system, developer, user or assistant", ErrInvalid, m.Role)
	}
	if len(m.ToolCalls) > 0 && !bytes.Equal(bytes.TrimSpace(m.ToolCalls), []byte("null")) {
		return Message{}, fmt.Errorf("%w: \"tool_calls\" are not supported for training", ErrInvalid)
	}
	content, err := parseContent(m.Content)
	if err != nil {
		return Message{}, err
	}
	msg := Message{Role: m.Role, Content: content}
	if m.Role == "assistant" {
		msg.Weight = 1
	}
	if m.Weight != nil {
		if m.Role != "assistant" {
			return Message{}, fmt.Errorf("%w: \"weight\" is only allowed on assistant messages", ErrInvalid)
		}
		switch m.Weight.String() {
		case "0":
			msg.Weight = 0
		case "1":
			msg.Weight = 1
		default:
			return Message{}, fmt.Errorf("%w: \"weight\" must be 0 or 1, got %s", ErrInvalid, m.Weight.String())
		}
	}
	return msg, nil
}

// parseContent accepts a string or an array of {"type":"text","text":...}
// parts, which are concatenated as the chat API does.
func parseContent(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", fmt.Errorf("%w: missing \"content\"", ErrInvalid)
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("%w: bad \"content\": %v", ErrInvalid, err)
		}
		return s, nil
	}
	var parts []contentPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", fmt.Errorf("%w: \"content\" must be a string or an array of text parts", ErrInvalid)
	}
	var sb strings.Builder
	for i, p := range parts {
		if p.Type != "text" {
			return "", fmt.Errorf("%w: content part %d has type %q; only \"text\" parts can be trained on", ErrInvalid, i, p.Type)
		}
		sb.WriteString(p.Text)
	}
	return sb.String(), nil
}

// ReadConfig bounds what Read accepts.
type ReadConfig struct {
	MaxLineBytes int // longest accepted line; default 8 MiB
	MaxExamples  int // 0 = unlimited
	MaxErrors    int // errors collected before Read gives up; default 10
}

// Validate fills defaults and rejects nonsense.
func (c *ReadConfig) Validate() error {
	if c.MaxLineBytes == 0 {
		c.MaxLineBytes = 8 << 20
	}
	if c.MaxErrors == 0 {
		c.MaxErrors = 10
	}
	if c.MaxLineBytes < 1024 || c.MaxExamples < 0 || c.MaxErrors < 1 {
		return fmt.Errorf("%w: dataset read config: MaxLineBytes must be >= 1024, MaxExamples and MaxErrors positive", ErrInvalid)
	}
	return nil
}

// Read parses and validates a whole JSONL file. Blank lines are skipped.
// Every line must use the same format. On failure it returns the errors of
// the first MaxErrors bad lines, each prefixed with its line number, joined.
func Read(r io.Reader, cfg ReadConfig) ([]Record, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), cfg.MaxLineBytes)
	var (
		recs   []Record
		errs   []error
		format Format
		line   int
	)
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		rec, err := ParseLine(b)
		if err == nil && format != FormatUnknown && rec.Format != format {
			err = fmt.Errorf("%w: this line is %s but earlier lines are %s; use one format per file", ErrInvalid, rec.Format, format)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", line, err))
			if len(errs) >= cfg.MaxErrors {
				break
			}
			continue
		}
		if format == FormatUnknown {
			format = rec.Format
		}
		rec.Line = line
		recs = append(recs, rec)
		if cfg.MaxExamples > 0 && len(recs) > cfg.MaxExamples {
			return nil, fmt.Errorf("%w: more than %d examples; split the file", ErrInvalid, cfg.MaxExamples)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("%w: line longer than %d bytes", ErrInvalid, cfg.MaxLineBytes)
		}
		errs = append(errs, fmt.Errorf("line %d: %w", line+1, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: the file has no examples", ErrInvalid)
	}
	return recs, nil
}

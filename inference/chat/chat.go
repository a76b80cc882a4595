package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
)

var (
	// ErrTemplate reports a template that does not parse or uses something
	// the engine does not support.
	ErrTemplate = errors.New("chat: template error")
	// ErrRaised reports a template's own raise_exception, typically a
	// conversation the model cannot take (roles out of order).
	ErrRaised = errors.New("chat: template rejected the conversation")
)

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// Fields holds the message's other keys (name, tool_calls,
	// tool_call_id...). A json.RawMessage value is decoded keeping key order.
	Fields map[string]any `json:"-"`
}

// RenderOptions are the variables a template sees besides messages.
type RenderOptions struct {
	AddGenerationPrompt bool
	BOS, EOS            string
	// Extra adds or overrides template variables (tools, documents,
	// date_string, other special tokens...). A json.RawMessage value is
	// decoded keeping object key order, as Python's json module would.
	Extra map[string]any
	// Now is the clock strftime_now reads; nil means time.Now.
	Now func() time.Time
}

// Template is a compiled chat template; it is safe for concurrent use.
type Template struct {
	t *exec.Template
}

const rootName = "/chat_template"

// transformers adds a {% generation %} block tag that marks assistant text
// for training masks and renders its body unchanged; it becomes an
// always-true if block, which keeps its whitespace control.
var (
	generationTag    = regexp.MustCompile(`\{%([-+]?)\s*generation\s*([-+]?)%\}`)
	endGenerationTag = regexp.MustCompile(`\{%([-+]?)\s*endgeneration\s*([-+]?)%\}`)
)

var (
	envOnce sync.Once
	env     *exec.Environment
)

func environment() *exec.Environment {
	envOnce.Do(func() {
		filters := exec.NewFilterSet(map[string]exec.FilterFunction{}).Update(builtins.Filters)
		for name, f := range map[string]exec.FilterFunction{"tojson": filterToJSON, "items": filterItems, "dictsort": filterDictSort} {
			if err := filters.Replace(name, f); err != nil {
				panic(err) // the builtin set always has these
			}
		}
		env = &exec.Environment{
			Context:           exec.EmptyContext().Update(builtins.GlobalFunctions).Update(builtins.GlobalVariables),
			Filters:           filters,
			Tests:             builtins.Tests,
			ControlStructures: builtins.ControlStructures,
			Methods:           builtins.Methods,
		}
		env.Methods.Str = strMethods()
		env.Methods.Dict = dictMethods()
	})
	return env
}

// Compile parses a chat template.
func Compile(src string) (tmpl *Template, err error) {
	defer func() {
		// A parser bug must not take the server down with it.
		if r := recover(); r != nil {
			tmpl, err = nil, fmt.Errorf("%w: parser failure: %v", ErrTemplate, r)
		}
	}()
	if strings.TrimSpace(src) == "" {
		return nil, fmt.Errorf("%w: the model has no chat template; send a plain prompt to /v1/completions or add chat_template to tokenizer_config.json", ErrTemplate)
	}
	src = generationTag.ReplaceAllString(src, "{%${1} if true ${2}%}")
	src = endGenerationTag.ReplaceAllString(src, "{%${1} endif ${2}%}")
	src = lstripBlocks(src)
	loader, err := loaders.NewMemoryLoader(map[string]string{rootName: src})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTemplate, err)
	}
	cfg := config.New()
	cfg.TrimBlocks = true
	cfg.AutoEscape = false
	t, err := exec.NewTemplate(rootName, cfg, loader, environment())
	if err != nil {
		for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(u) {
			err = u
		}
		return nil, fmt.Errorf("%w: %v", ErrTemplate, err)
	}
	return &Template{t: t}, nil
}

// Render renders the conversation. A template's raise_exception comes back
// as ErrRaised with its message; any other failure as ErrTemplate.
func (t *Template) Render(msgs []Message, opts RenderOptions) (out string, err error) {
	var raised string
	defer func() {
		if r := recover(); r != nil {
			out, err = "", fmt.Errorf("%w: render failure: %v", ErrTemplate, r)
		}
	}()
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	list := make([]any, len(msgs))
	for i, m := range msgs {
		d := exec.NewDict()
		d.Pairs = append(d.Pairs,
			&exec.Pair{Key: exec.AsValue("role"), Value: exec.AsValue(m.Role)},
			&exec.Pair{Key: exec.AsValue("content"), Value: exec.AsValue(m.Content)})
		keys := make([]string, 0, len(m.Fields))
		for k := range m.Fields {
			if k != "role" && k != "content" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			v, err := templateValue(m.Fields[k])
			if err != nil {
				return "", fmt.Errorf("%w: message %d field %s: %v", ErrTemplate, i, k, err)
			}
			d.Pairs = append(d.Pairs, &exec.Pair{Key: exec.AsValue(k), Value: exec.AsValue(v)})
		}
		list[i] = d
	}
	vars := map[string]any{
		"messages":              list,
		"add_generation_prompt": opts.AddGenerationPrompt,
		"bos_token":             opts.BOS,
		"eos_token":             opts.EOS,
		"raise_exception": func(msg string) (string, error) {
			raised = msg
			return "", errors.New(msg)
		},
		"strftime_now": func(format string) string { return strftime(now(), format) },
	}
	for k, v := range opts.Extra {
		if vars[k], err = templateValue(v); err != nil {
			return "", fmt.Errorf("%w: variable %s: %v", ErrTemplate, k, err)
		}
	}
	out, err = t.t.ExecuteToString(exec.NewContext(vars))
	if raised != "" {
		return "", fmt.Errorf("%w: %s", ErrRaised, raised)
	}
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrTemplate, err)
	}
	return out, nil
}

// templateValue decodes json.RawMessage values (keeping key order) and
// passes anything else through.
func templateValue(v any) (any, error) {
	if raw, ok := v.(json.RawMessage); ok {
		return decodeOrdered(raw)
	}
	return v, nil
}

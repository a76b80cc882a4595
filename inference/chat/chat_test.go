package chat

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type testCase struct {
	Name     string                       `json:"name"`
	Template string                       `json:"template"`
	Messages []map[string]json.RawMessage `json:"messages"`
	AddGen   bool                         `json:"add_generation_prompt"`
	BOS      string                       `json:"bos"`
	EOS      string                       `json:"eos"`
	Extra    map[string]json.RawMessage   `json:"extra"`
}

// The golden files were rendered by Python Jinja2 3.1 configured as
// transformers does (ImmutableSandboxedEnvironment, trim_blocks,
// lstrip_blocks, loopcontrols, json.dumps tojson, raise_exception), and
// read through by hand.
func TestGolden(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []testCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata", "templates", c.Template+".jinja"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join("testdata", "golden", c.Name+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			tmpl, err := Compile(string(src))
			if err != nil {
				t.Fatal(err)
			}
			extra := map[string]any{}
			for k, v := range c.Extra {
				extra[k] = v
			}
			var msgs []Message
			for _, m := range c.Messages {
				var msg Message
				if err := json.Unmarshal(m["role"], &msg.Role); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(m["content"], &msg.Content); err != nil {
					t.Fatal(err)
				}
				for k, v := range m {
					if k != "role" && k != "content" {
						if msg.Fields == nil {
							msg.Fields = map[string]any{}
						}
						msg.Fields[k] = v
					}
				}
				msgs = append(msgs, msg)
			}
			got, err := tmpl.Render(msgs, RenderOptions{AddGenerationPrompt: c.AddGen, BOS: c.BOS, EOS: c.EOS, Extra: extra})
			if msg, ok := strings.CutPrefix(string(want), "ERROR: "); ok {
				if !errors.Is(err, ErrRaised) || !strings.Contains(err.Error(), msg) {
					t.Fatalf("error = %v, want ErrRaised with %q", err, msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\n--- want:\n%s", got, want)
			}
		})
	}
}

func TestStrftimeNow(t *testing.T) {
	tmpl, err := Compile(`{{ strftime_now("%d %b %Y %H:%M:%S %A %B %j %y %p %I %%") }}`)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, time.July, 5, 15, 4, 9, 0, time.UTC)
	got, err := tmpl.Render(nil, RenderOptions{Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	if want := "05 Jul 2024 15:04:09 Friday July 187 24 PM 03 %"; got != want {
		t.Errorf("strftime_now = %q, want %q", got, want)
	}
}

func TestErrors(t *testing.T) {
	for _, src := range []string{"", "{% for x in messages %}", "{{ 'a' + }}", "{% frobnicate %}"} {
		if _, err := Compile(src); !errors.Is(err, ErrTemplate) {
			t.Errorf("Compile(%q) error = %v, want ErrTemplate", src, err)
		}
	}
	tmpl, err := Compile(`{% include "/etc/passwd" %}`)
	if err == nil {
		_, err = tmpl.Render(nil, RenderOptions{})
	}
	if err == nil {
		t.Error("include of a file rendered without error; templates must not read files")
	}
}

func TestNoAutoescape(t *testing.T) {
	tmpl, err := Compile(`{{ messages[0].content }}`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tmpl.Render([]Message{{Role: "user", Content: `<b>&"'`}}, RenderOptions{})
	if err != nil || got != `<b>&"'` {
		t.Errorf("Render = %q, %v; want the content unescaped", got, err)
	}
}

func TestPyFloat(t *testing.T) {
	for f, want := range map[float64]string{1: "1.0", 0.1: "0.1", 1e16: "1e+16", 1e15: "1000000000000000.0", 0.0001: "0.0001", 0.00001: "1e-05", -2.5: "-2.5", 1.5e300: "1.5e+300"} {
		if got := pyFloat(f); got != want {
			t.Errorf("pyFloat(%g) = %q, want %q", f, got, want)
		}
	}
}

func FuzzRender(f *testing.F) {
	entries, _ := os.ReadDir(filepath.Join("testdata", "templates"))
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("testdata", "templates", e.Name()))
		if err == nil {
			f.Add(string(b), "hello")
		}
	}
	f.Add("{{ messages[0]['content'][1:] }}{% for m in messages %}{{ loop.revindex }}{% endfor %}", "x")
	f.Fuzz(func(t *testing.T, src, content string) {
		tmpl, err := Compile(src)
		if err != nil {
			if !errors.Is(err, ErrTemplate) {
				t.Fatalf("Compile error %v is not ErrTemplate", err)
			}
			return
		}
		_, err = tmpl.Render([]Message{{Role: "user", Content: content}, {Role: "assistant", Content: content}}, RenderOptions{AddGenerationPrompt: true, BOS: "<s>", EOS: "</s>"})
		if err != nil && !errors.Is(err, ErrTemplate) && !errors.Is(err, ErrRaised) {
			t.Fatalf("Render error %v is neither ErrTemplate nor ErrRaised", err)
		}
	})
}

package chat

import "testing"

// Expected strings are Python Jinja2's output with trim_blocks and
// lstrip_blocks on.
func TestLstripBlocks(t *testing.T) {
	cases := []struct{ src, want string }{
		{"a {% if true %}b{% endif %}", "a b"},
		{"{% if true %}x{% endif %} {% if true %}y{% endif %}", "x y"},
		{"x\n  {% if true %}y{% endif %}", "x\ny"},
		{"{{ 'a' }} {% if true %}b{% endif %}", "a b"},
		{"a\t{% if true %}b{% endif %}", "a\tb"},
		{"{% if true %}x{% endif %}  \n{% if true %}y{% endif %}", "x  \ny"},
		{"  {% if true %}\n  x\n  {% endif %}\n", "  x\n"},
		{"  {%+ if true %}x{% endif %}", "  x"},
		{"  {# note #}\nx", "x"},
		{"{{ '  {% not a tag %}' }}", "  {% not a tag %}"},
		{"{% for i in range(2) %}\n    {{ i }}\n{% endfor %}", "    0\n    1\n"},
	}
	for _, c := range cases {
		tm, err := Compile(c.src)
		if err != nil {
			t.Fatalf("Compile(%q): %v", c.src, err)
		}
		got, err := tm.Render(nil, RenderOptions{})
		if err != nil || got != c.want {
			t.Errorf("Render(%q) = %q, %v; want %q", c.src, got, err, c.want)
		}
	}
}

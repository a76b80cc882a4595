package loadtest

import (
	"errors"
	"strings"
	"testing"
)

// FuzzReadStream feeds arbitrary bytes as an SSE body: the reader must never
// panic, must classify every failure, and must count only chunks with text.
func FuzzReadStream(f *testing.F) {
	f.Add("data: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: [DONE]\n\n")
	f.Add("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\r\n\r\n: ping\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\ndata: [DONE]")
	f.Add("data: {\"error\":{\"message\":\"x\"}}\n\n")
	f.Add("data: {not json\n\n")
	f.Add("event: message\nid: 1\ndata:[DONE]\n")
	f.Fuzz(func(t *testing.T, body string) {
		tokens := 0
		u, kind, err := readStream(strings.NewReader(body), func() { tokens++ })
		if err != nil {
			if kind == "" {
				t.Fatalf("error without a kind: %v", err)
			}
			return
		}
		if !strings.Contains(body, "[DONE]") {
			t.Fatal("a stream without [DONE] was accepted")
		}
		if tokens > strings.Count(body, "data:") {
			t.Fatalf("%d tokens from %d data lines", tokens, strings.Count(body, "data:"))
		}
		_ = u
	})
}

// FuzzParseDist checks that accepted lengths are always usable.
func FuzzParseDist(f *testing.F) {
	for _, s := range []string{"128", "64-256", "0", "5-2", "-", "1-99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDist(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		if d.Min < 1 || d.Max < d.Min {
			t.Fatalf("ParseDist(%q) = %v", s, d)
		}
	})
}

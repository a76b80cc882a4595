package server

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestStreamGolden pins the exact bytes of the SSE wire format: framing,
// chunk order, the role chunk, finish chunk, usage chunk and [DONE].
func TestStreamGolden(t *testing.T) {
	h := start(t, func(_ *Config, _ *fakeEngine, s *Server) {
		if s != nil {
			s.now = func() time.Time { return time.Unix(1732600000, 0) }
			s.newID = func(prefix string) string { return prefix + "golden" }
		}
	})
	cases := []struct{ file, path, body string }{
		{"chat_stream.golden", "/v1/chat/completions", `{"model":"alpha","messages":[{"role":"user","content":"hi"}],"stream":true,
			"stream_options":{"include_usage":true},"max_tokens":3,"logprobs":true,"top_logprobs":1}`},
		{"chat_stream_stop.golden", "/v1/chat/completions", `{"model":"base","messages":[{"role":"user","content":"hi"}],"stream":true}`},
		{"completion_stream.golden", "/v1/completions", `{"model":"base","prompt":"hi","stream":true,"echo":true,"max_tokens":2,
			"stream_options":{"include_usage":true}}`},
	}
	for _, c := range cases {
		resp, got := h.post(c.path, c.body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", c.file, resp.StatusCode, got)
		}
		path := filepath.Join("testdata", c.file)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from the golden file:\n got: %s\nwant: %s", c.file, got, want)
		}
	}
}

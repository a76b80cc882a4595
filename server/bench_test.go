package server

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkChatStreamPerToken measures the server's own cost per streamed
// token (decode, fan-in, chunk encoding, SSE write and flush, HTTP client)
// over the instant fake engine; the model's cost comes on top.
func BenchmarkChatStreamPerToken(b *testing.B) {
	h := start(b, nil)
	const tokens = 100
	body := `{"model":"alpha","messages":[{"role":"user","content":"hi"}],"stream":true,"ignore_eos":true,"max_tokens":100}`
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := http.Post(h.url+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tokens), "ns/token")
}

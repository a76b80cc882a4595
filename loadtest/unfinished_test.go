package loadtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// partial is what the server below streams before it stalls: three token
// chunks.
var partial = strings.Repeat("data: {\"choices\":[{\"text\":\"tok\"}]}\n\n", 3)

// readAll reports, once per response, when the client asks for more after
// it has been given all of partial: by then the stream reader has
// processed every chunk (it reads on only when its buffer is used up).
type readAll struct {
	io.ReadCloser
	n    int
	once sync.Once
	done chan<- struct{}
}

func (r *readAll) Read(p []byte) (int, error) {
	if r.n >= len(partial) {
		r.once.Do(func() { r.done <- struct{}{} })
	}
	n, err := r.ReadCloser.Read(p)
	r.n += n
	return n, err
}

type watch struct{ done chan<- struct{} }

func (w watch) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		resp.Body = &readAll{ReadCloser: resp.Body, done: w.done}
	}
	return resp, err
}

// Tokens streamed to requests the end of the run cuts off count in the
// output throughput, not as finished requests.
func TestUnfinishedTokensCount(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, partial)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	done := make(chan struct{}, 2)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-done
		<-done
		cancel() // both requests have their three tokens: end the run
	}()
	rep, err := Run(ctx, Config{BaseURL: srv.URL, Adapters: []string{"m"}, Concurrency: 2, Requests: 2,
		Client: &http.Client{Transport: watch{done}}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 0 || rep.Unfinished != 2 || rep.UnfinishedTokensOut != 6 || rep.TokensOut != 0 || rep.OutputTokPerSec <= 0 {
		t.Errorf("requests %d, unfinished %d with %d tokens, tokens out %d, %.1f tok/s; want 0, 2 with 6, 0, > 0",
			rep.Requests, rep.Unfinished, rep.UnfinishedTokensOut, rep.TokensOut, rep.OutputTokPerSec)
	}
}

package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loraplex/loraplex/server/openai"
)

// stream opens a streaming request and returns a reader of its events.
type stream struct {
	resp *http.Response
	r    *bufio.Reader
}

func (h *harness) openStream(ctx context.Context, path, body string) *stream {
	h.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.url+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		h.t.Fatalf("stream: %d %s", resp.StatusCode, b)
	}
	return &stream{resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the next event's data, or "" at the end of the body.
func (s *stream) next() string {
	var data string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return data
		}
		line = strings.TrimRight(line, "\n")
		if line == "" && data != "" {
			return data
		}
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			data = d
		}
	}
}

func (s *stream) close() { s.resp.Body.Close() }

func TestClientDisconnectFreesSequenceAndLease(t *testing.T) {
	h := start(t, func(_ *Config, e *fakeEngine, _ *Server) { e.gate = make(chan struct{}) })
	ctx, cancel := context.WithCancel(context.Background())
	s := h.openStream(ctx, "/v1/chat/completions", `{"model":"alpha","messages":[{"role":"user","content":"hi"}],"stream":true,"n":2}`)
	if first := s.next(); !strings.Contains(first, `"role":"assistant"`) {
		t.Fatalf("first event %s", first)
	}
	h.eng.gate <- struct{}{} // one token, so the sequence is mid-generation
	s.next()
	cancel()
	s.close()
	h.eng.wg.Wait()         // returns only once the engine saw the cancellation
	<-h.srv.inflight.idle() // the handler holds a lease reference until it returns
	if leases, _ := h.ads.outstanding(); leases != 0 {
		t.Errorf("%d leases held after the client left", leases)
	}
}

func TestQueueFullIs429(t *testing.T) {
	h := start(t, func(_ *Config, e *fakeEngine, _ *Server) { e.capacity = 1 })
	h.eng.gate = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := h.openStream(ctx, "/v1/chat/completions", `{"model":"beta","messages":[{"role":"user","content":"hi"}],"stream":true}`)
	defer s.close()
	s.next()
	for _, body := range []string{
		`{"model":"alpha","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"alpha","messages":[{"role":"user","content":"hi"}],"stream":true}`,
		`{"model":"alpha","prompt":"hi","n":2}`,
	} {
		path := "/v1/chat/completions"
		if strings.Contains(body, "prompt") {
			path = "/v1/completions"
		}
		resp, b := h.post(path, body)
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" || errorBody(t, b)["code"] != "rate_limit_exceeded" {
			t.Errorf("%s: %d %q %s", body, resp.StatusCode, resp.Header.Get("Retry-After"), b)
		}
	}
	if leases, doubles := h.ads.outstanding(); leases != 1 || doubles != 0 {
		t.Errorf("refused requests kept leases: %d outstanding (want the streaming one), %d double releases", leases, doubles)
	}
}

func TestRequestTimeout(t *testing.T) {
	h := start(t, func(c *Config, e *fakeEngine, _ *Server) {
		c.RequestTimeout = 20 * time.Millisecond
		e.gate = make(chan struct{})
	})
	resp, b := h.post("/v1/chat/completions", `{"model":"alpha","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != http.StatusGatewayTimeout || errorBody(t, b)["code"] != "request_timeout" {
		t.Errorf("non-stream: %d %s", resp.StatusCode, b)
	}
	resp, b = h.post("/v1/completions", `{"model":"alpha","prompt":"hi","stream":true}`)
	events := sseEvents(t, b)
	if resp.StatusCode != 200 || len(events) < 2 || events[len(events)-1] != "[DONE]" ||
		!strings.Contains(events[len(events)-2], `"code":"request_timeout"`) {
		t.Errorf("stream: %d %q", resp.StatusCode, events)
	}
}

func TestShutdownCancelsAfterGrace(t *testing.T) {
	h := start(t, func(c *Config, e *fakeEngine, _ *Server) { c.ShutdownGrace = 0; e.gate = make(chan struct{}) })
	s := h.openStream(context.Background(), "/v1/chat/completions", `{"model":"alpha","messages":[{"role":"user","content":"hi"}],"stream":true}`)
	defer s.close()
	s.next()
	done := make(chan error, 1)
	go func() { done <- h.srv.Shutdown(context.Background()) }()
	var events []string
	for ev := s.next(); ev != ""; ev = s.next() {
		events = append(events, ev)
	}
	if len(events) < 2 || events[len(events)-1] != "[DONE]" || !strings.Contains(events[len(events)-2], `"code":"server_unavailable"`) {
		t.Errorf("stream after shutdown: %q", events)
	}
	if err := <-done; err == nil {
		t.Error("Shutdown reported a clean drain although it had to cancel a request")
	}
	resp, err := http.Get(h.url + "/health")
	if err == nil {
		resp.Body.Close()
		t.Error("server still accepts connections after Shutdown")
	}
}

func TestShutdownDrainsRunningRequests(t *testing.T) {
	h := start(t, func(_ *Config, e *fakeEngine, _ *Server) { e.gate = make(chan struct{}) })
	s := h.openStream(context.Background(), "/v1/completions", `{"model":"alpha","prompt":"hi","stream":true,"max_tokens":3}`)
	defer s.close()
	done := make(chan error, 1)
	go func() { done <- h.srv.Shutdown(context.Background()) }()
	var text string
	for range 3 {
		h.eng.gate <- struct{}{}
		var c openai.CompletionResponse
		_ = json.Unmarshal([]byte(s.next()), &c)
		text += c.Choices[0].Text
	}
	for ev := s.next(); ev != ""; ev = s.next() {
		if ev != "[DONE]" && !strings.Contains(ev, `"finish_reason":"length"`) {
			t.Errorf("unexpected event while draining: %s", ev)
		}
	}
	if text != "[al" {
		t.Errorf("drained text %q", text)
	}
	if err := <-done; err != nil {
		t.Errorf("graceful drain: %v", err)
	}
}

// TestConcurrentClients runs many clients at once over mixed adapters, some
// streaming, some leaving early; every completed answer must carry its own
// adapter's text and nothing may leak (checked when the test ends).
func TestConcurrentClients(t *testing.T) {
	h := start(t, func(_ *Config, e *fakeEngine, _ *Server) { e.gate = make(chan struct{}) })
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case h.eng.gate <- struct{}{}:
			case <-stop:
				return
			}
		}
	}()
	defer close(stop)
	models := []string{"base", "alpha", "beta", "org/gamma", "base:alpha"}
	want := map[string]string{"base": "hello world.", "alpha": "[alpha] hello world.", "beta": "[beta] hello world.",
		"org/gamma": "[org/gamma] hello world.", "base:alpha": "[alpha] hello world."}
	rng := rand.New(rand.NewPCG(1, 2))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 48 {
		model, streaming, leave, n := models[rng.IntN(len(models))], rng.IntN(2) == 0, rng.IntN(4) == 0, 1+rng.IntN(2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"c%d"}],"stream":%v,"n":%d}`, model, i, streaming, n)
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.url+"/v1/chat/completions", strings.NewReader(body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			if leave {
				buf := make([]byte, 64)
				_, _ = resp.Body.Read(buf)
				cancel()
				return
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				errs <- err
				return
			}
			got := map[int]string{}
			if streaming {
				for _, ev := range sseEvents(t, b) {
					var c openai.ChatChunk
					if ev == "[DONE]" || json.Unmarshal([]byte(ev), &c) != nil || len(c.Choices) == 0 {
						continue
					}
					if d := c.Choices[0].Delta.Content; d != nil {
						got[c.Choices[0].Index] += *d
					}
				}
			} else {
				var r openai.ChatResponse
				if err := json.Unmarshal(b, &r); err != nil {
					errs <- fmt.Errorf("%s: %s", body, b)
					return
				}
				for _, c := range r.Choices {
					got[c.Index] = c.Message.Content
				}
			}
			for k := range n {
				if got[k] != want[model] {
					errs <- fmt.Errorf("%s: choice %d = %q, want %q", body, k, got[k], want[model])
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestStalledReaderIsDropped: a client that stops reading must not pin its
// handler (and sequence) forever; the write timeout ends it.
func TestStalledReaderIsDropped(t *testing.T) {
	h := start(t, func(c *Config, e *fakeEngine, _ *Server) { c.WriteTimeout = 50 * time.Millisecond; e.repeat = 1 << 20 })
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	body := `{"messages":[{"role":"user","content":"hi"}],"stream":true,"ignore_eos":true}`
	fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	if _, err := io.ReadFull(conn, make([]byte, 64)); err != nil { // the stream has started
		t.Fatal(err)
	}
	<-h.srv.inflight.idle() // closes only if the handler gave up on the stalled client
	h.eng.wg.Wait()
}

// TestTricklingBodyTimesOut: a body that never completes gets 408 instead
// of holding the handler.
func TestTricklingBodyTimesOut(t *testing.T) {
	h := start(t, func(c *Config, _ *fakeEngine, _ *Server) { c.BodyReadTimeout = 30 * time.Millisecond })
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"mess")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || errorBody(t, b)["code"] != "request_timeout" {
		t.Errorf("%d %s", resp.StatusCode, b)
	}
}

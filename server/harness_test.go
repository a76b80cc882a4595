package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// harness runs a real server on a loopback port in front of the fakes and
// checks, when the test ends, that nothing leaked: no sequence left in the
// engine, no lease held, no forwarding goroutine alive.
type harness struct {
	t   testing.TB
	srv *Server
	url string
	eng *fakeEngine
	ads *fakeAdapters
}

var testAdapters = []string{"alpha", "beta", "org/gamma", "ft:base:acme:tone:7p4l"}

func start(t testing.TB, mod func(*Config, *fakeEngine, *Server)) *harness {
	t.Helper()
	cfg := DefaultConfig()
	cfg.ModelName = "base"
	eng, ads := newFakeEngine(), newFakeAdapters(testAdapters...)
	if mod != nil {
		mod(&cfg, eng, nil)
	}
	srv, err := New(cfg, Deps{Engine: eng, Adapters: ads})
	if err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(&cfg, eng, srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	h := &harness{t: t, srv: srv, url: "http://" + ln.Addr().String(), eng: eng, ads: ads}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		already := srv.draining.Load() // the test shut down itself and checked the result
		if err := srv.Shutdown(ctx); err != nil && !already {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-errc; err != nil {
			t.Errorf("serve: %v", err)
		}
		h.settle()
	})
	return h
}

// settle waits until every engine sequence and forwarder has ended (they
// end because the server cancels what it no longer reads), then checks for
// leaks.
func (h *harness) settle() {
	h.t.Helper()
	h.eng.wg.Wait()
	h.srv.workers.Wait()
	if n := h.eng.liveSeqs(); n != 0 {
		h.t.Errorf("%d sequences still live in the engine", n)
	}
	if leases, doubles := h.ads.outstanding(); leases != 0 || doubles != 0 {
		h.t.Errorf("adapter leases outstanding %d, released twice %d", leases, doubles)
	}
	var buf bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
	if strings.Contains(buf.String(), "server.(*generation)") {
		h.t.Errorf("generation goroutines leaked:\n%s", buf.String())
	}
}

func (h *harness) do(method, path, body string, header ...string) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, b
}

func (h *harness) post(path, body string, header ...string) (*http.Response, []byte) {
	h.t.Helper()
	return h.do(http.MethodPost, path, body, header...)
}

// postJSON posts and decodes a 200 response into v.
func (h *harness) postJSON(path, body string, v any) {
	h.t.Helper()
	resp, b := h.post(path, body)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("POST %s %s: status %d: %s", path, body, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		h.t.Fatalf("decoding %s: %v", b, err)
	}
}

// sseEvents splits an SSE body into its data payloads, checking framing.
func sseEvents(t *testing.T, body []byte) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	blank := true
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			blank = true
			continue
		}
		if !blank {
			t.Fatalf("SSE event without blank line separator before %q", line)
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("SSE line %q is not a data line", line)
		}
		out = append(out, data)
		blank = false
	}
	return out
}

// errorBody checks that b is an OpenAI error object with all four keys.
func errorBody(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var e struct {
		Error map[string]any `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil || e.Error == nil {
		t.Fatalf("not an OpenAI error body: %s", b)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := e.Error[k]; !ok {
			t.Fatalf("error body lacks %q: %s", k, b)
		}
	}
	if m, _ := e.Error["message"].(string); m == "" {
		t.Fatalf("error body has no message: %s", b)
	}
	return e.Error
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

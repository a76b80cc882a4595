package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// collector is a minimal OTLP/HTTP trace receiver.
type collector struct {
	mu    sync.Mutex
	spans []string
	svc   []string
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var req coltrace.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(b, &req) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	for _, rs := range req.ResourceSpans {
		for _, a := range rs.Resource.Attributes {
			if a.Key == "service.name" {
				c.svc = append(c.svc, a.Value.GetStringValue())
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				c.spans = append(c.spans, s.Name)
			}
		}
	}
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

func TestSpansReachCollector(t *testing.T) {
	col := &collector{}
	ts := httptest.NewServer(col)
	defer ts.Close()
	cfg := DefaultConfig()
	cfg.Endpoint = ts.URL + "/"
	tp, err := NewTracerProvider(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("test").Start(context.Background(), "POST /v1/chat/completions")
	span.End()
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if strings.Join(col.spans, ",") != "POST /v1/chat/completions" || strings.Join(col.svc, ",") != "loraplex" {
		t.Errorf("collector got spans %q from services %q", col.spans, col.svc)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{Endpoint: "", ServiceName: "x", SampleRatio: 1},
		{Endpoint: "localhost:4318", ServiceName: "x", SampleRatio: 1},
		{Endpoint: "http://h:4318", ServiceName: "x", SampleRatio: 2},
		{Endpoint: "http://h:4318", SampleRatio: 1},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

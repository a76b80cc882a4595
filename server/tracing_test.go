package server

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestRequestSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	h := start(t, func(_ *Config, _ *fakeEngine, s *Server) {
		if s != nil {
			s.tracer = tp.Tracer("test")
		}
	})
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	h.post("/v1/chat/completions", `{"model":"alpha","messages":[{"role":"user","content":"hi"}]}`,
		"traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	h.post("/v1/chat/completions", `{"model":"nope","messages":[{"role":"user","content":"hi"}]}`)
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans", len(spans))
	}
	s := spans[0]
	attrs := map[string]string{}
	for _, a := range s.Attributes() {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	if s.Name() != "POST /v1/chat/completions" || s.SpanContext().TraceID().String() != traceID ||
		attrs["loraplex.adapter"] != "alpha" || attrs["http.response.status_code"] != "200" {
		t.Errorf("span %s trace %s attrs %v", s.Name(), s.SpanContext().TraceID(), attrs)
	}
	for _, a := range spans[1].Attributes() {
		if a.Key == "http.response.status_code" && a.Value.AsInt64() != 404 {
			t.Errorf("unknown model span status %v", a.Value.AsInt64())
		}
	}
}

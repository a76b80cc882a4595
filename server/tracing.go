package server

import (
	"context"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// startSpan opens the request's server span, continuing a W3C traceparent
// the client sent so a gateway's trace includes our work.
func (s *Server) startSpan(ctx context.Context, c echo.Context) (context.Context, trace.Span) {
	req := c.Request()
	ctx = propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(req.Header))
	return s.tracer.Start(ctx, req.Method+" "+c.Path(), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", req.Method), attribute.String("http.route", c.Path())))
}

func (s *Server) endSpan(span trace.Span, c echo.Context, status int, err error) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if a, ok := c.Get(adapterKey).(string); ok {
		span.SetAttributes(attribute.String("loraplex.adapter", a))
	}
	if status >= 500 {
		span.SetStatus(codes.Error, toAPIError(err).Message)
	}
}

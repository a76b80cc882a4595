package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// ErrConfig marks an invalid Config.
var ErrConfig = errors.New("telemetry: invalid config")

// Config says where spans go.
type Config struct {
	// Endpoint is the collector's base URL, as in OTEL_EXPORTER_OTLP_ENDPOINT
	// (e.g. http://localhost:4318); spans are posted to <Endpoint>/v1/traces.
	Endpoint string
	// ServiceName labels every span's resource (service.name).
	ServiceName string
	// SampleRatio is the fraction of new traces recorded, 0..1; requests
	// that arrive with a sampled traceparent are always recorded.
	SampleRatio float64
}

// DefaultConfig samples every request.
func DefaultConfig() Config { return Config{ServiceName: "loraplex", SampleRatio: 1} }

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	u, err := url.Parse(c.Endpoint)
	switch {
	case c.Endpoint == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("%w: endpoint %q must be an http(s) URL such as http://localhost:4318", ErrConfig, c.Endpoint)
	case c.SampleRatio < 0 || c.SampleRatio > 1:
		return fmt.Errorf("%w: sample ratio %g must be in [0, 1]", ErrConfig, c.SampleRatio)
	case c.ServiceName == "":
		return fmt.Errorf("%w: the service name is empty", ErrConfig)
	}
	return nil
}

// NewTracerProvider returns a provider batching spans to the collector.
// Pass it to server.Deps.TracerProvider and Shutdown it after the server
// to flush the last spans.
func NewTracerProvider(ctx context.Context, cfg Config) (*sdktrace.TracerProvider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(strings.TrimRight(cfg.Endpoint, "/")+"/v1/traces"))
	if err != nil {
		return nil, fmt.Errorf("telemetry: creating the OTLP exporter for %s: %w", cfg.Endpoint, err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", cfg.ServiceName))
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	), nil
}

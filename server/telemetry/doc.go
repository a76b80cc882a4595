// Package telemetry builds the OpenTelemetry tracer provider that exports the
// server's per-request spans over OTLP/HTTP to a collector.
package telemetry

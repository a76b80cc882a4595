// Package loadtest drives any OpenAI-compatible server over HTTP with
// streaming requests spread over many adapter names, and measures what users
// feel: time to first token, inter-token latency, end-to-end latency,
// throughput and errors, overall and per adapter. It speaks only the wire
// protocol, so it benchmarks loraplex and other servers alike.
package loadtest

// Package backend connects the HTTP server to the real engine and adapter
// registry: it implements server.Engine over a scheduler, tokenizer and chat
// template, and server.Adapters over the registry, translating types and
// errors at the boundary so the server itself depends on neither.
package backend

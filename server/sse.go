package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// sseWriter writes Server-Sent Events the way OpenAI streams: each event is
// `data: <json>\n\n`, the stream ends with `data: [DONE]\n\n`. Every event is
// flushed at once so tokens reach the client as they are generated.
type sseWriter struct {
	w       http.ResponseWriter
	timeout time.Duration // per write; a client that stops reading is dropped
	rc      *http.ResponseController
	buf     bytes.Buffer
	enc     *json.Encoder // writes into buf; reused for every event
	started bool
}

func newSSE(c echo.Context, timeout time.Duration) *sseWriter {
	s := &sseWriter{w: c.Response(), rc: http.NewResponseController(c.Response()), timeout: timeout}
	s.enc = json.NewEncoder(&s.buf)
	s.enc.SetEscapeHTML(false)
	return s
}

func (s *sseWriter) start() error {
	if s.started {
		return nil
	}
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no") // nginx would otherwise buffer the stream
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	s.w.WriteHeader(http.StatusOK)
	return s.rc.Flush()
}

// send writes one `data:` event holding v as JSON.
func (s *sseWriter) send(v any) error {
	if err := s.start(); err != nil {
		return err
	}
	s.buf.Reset()
	s.buf.WriteString("data: ")
	if err := s.enc.Encode(v); err != nil {
		return err
	}
	s.buf.Truncate(s.buf.Len() - 1) // Encode's newline; the event ends with a blank line
	s.buf.WriteString("\n\n")
	return s.write()
}

// done writes the terminating `data: [DONE]` event.
func (s *sseWriter) done() error {
	if err := s.start(); err != nil {
		return err
	}
	s.buf.Reset()
	s.buf.WriteString("data: [DONE]\n\n")
	return s.write()
}

// fail reports an error after the stream started: an error event in the
// OpenAI error shape, then [DONE], so clients stop waiting.
func (s *sseWriter) fail(err error) error {
	if e := s.send(toAPIError(err).Body()); e != nil {
		return e
	}
	return s.done()
}

func (s *sseWriter) write() error {
	// Not every ResponseWriter supports deadlines; those just lack the bound.
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	if _, err := s.w.Write(s.buf.Bytes()); err != nil {
		return err
	}
	return s.rc.Flush()
}

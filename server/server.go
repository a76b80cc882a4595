package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ErrNoEngine is returned by New without an Engine.
var ErrNoEngine = errors.New("server needs an engine")

// errShuttingDown is the cause given to requests cancelled by Shutdown.
var errShuttingDown = fmt.Errorf("%w: the server is shutting down; retry on another replica or later", ErrUnavailable)

// Deps are the server's collaborators, built and owned by cmd.
type Deps struct {
	Engine Engine
	// Adapters may be nil: then only the base model is served.
	Adapters Adapters
	// TracerProvider, when set, traces every request (cmd wires an OTLP
	// exporter to it); nil disables tracing.
	TracerProvider trace.TracerProvider
	Logger         *slog.Logger
}

// Server is the HTTP API. Create it with New, run it with Serve, stop it
// with Shutdown.
type Server struct {
	cfg     Config
	eng     Engine
	ads     Adapters
	echo    *echo.Echo
	http    *http.Server
	log     *slog.Logger
	tracer  trace.Tracer
	metrics *metrics
	loras   *loraTracker
	// router registers routes with the right keys; optional APIs added
	// after New (fine-tuning) use it too.
	router  *router
	started time.Time

	// baseCtx parents every request context; cancelling it ends all
	// requests at the end of the shutdown grace period.
	baseCtx  context.Context
	cancel   context.CancelCauseFunc
	draining atomic.Bool
	stopOnce sync.Once
	stopErr  error
	inflight inflight
	// workers counts the goroutines that forward engine events; they end
	// when the engine closes their channel.
	workers sync.WaitGroup

	// now and newID are replaced in tests to make output reproducible.
	now   func() time.Time
	newID func(prefix string) string
}

// New builds the server and its routes; it does not listen yet.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Engine == nil {
		return nil, ErrNoEngine
	}
	s := &Server{cfg: cfg, eng: deps.Engine, ads: deps.Adapters, log: deps.Logger,
		loras: newLoraTracker(), now: time.Now, newID: randomID}
	if s.ads == nil {
		s.ads = noAdapters{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	tp := deps.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	s.tracer = tp.Tracer("github.com/loraplex/loraplex/server")
	s.started = s.now()
	s.baseCtx, s.cancel = context.WithCancelCause(context.Background())
	m, err := newMetrics(s)
	if err != nil {
		return nil, err
	}
	s.metrics = m

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Use(s.track)
	s.echo = e
	s.routes()
	s.http = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// router registers routes with the access level they need. Each resource
// file adds its routes in one function called from routes.
type router struct {
	e           *echo.Echo
	user, admin []echo.MiddlewareFunc
}

// User registers a route any API key holder may call.
func (r *router) User(method, path string, h echo.HandlerFunc) {
	r.e.Add(method, path, h, r.user...)
}

// Admin registers a route that needs the admin key.
func (r *router) Admin(method, path string, h echo.HandlerFunc) {
	r.e.Add(method, path, h, r.admin...)
}

// Public registers a route without authentication.
func (r *router) Public(method, path string, h echo.HandlerFunc) {
	r.e.Add(method, path, h)
}

func (s *Server) routes() {
	adminKey := s.cfg.AdminKey
	if adminKey == "" {
		adminKey = s.cfg.APIKey
	}
	r := &router{
		e:     s.echo,
		user:  []echo.MiddlewareFunc{s.requireKey(s.cfg.APIKey, s.cfg.AdminKey)},
		admin: []echo.MiddlewareFunc{s.requireKey(adminKey)},
	}
	s.router = r
	s.healthRoutes(r)
	s.metricsRoutes(r)
	s.chatRoutes(r)
	s.completionRoutes(r)
	s.modelRoutes(r)
	s.adapterRoutes(r)
	s.tokenizeRoutes(r)
}

// Handler is the server's http.Handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.http.Handler }

// Serve answers requests on ln until Shutdown; it returns nil after a
// clean shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.http.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ListenAndServe listens on addr (cmd passes 127.0.0.1:port by default:
// exposing the API beyond the host is an explicit choice) and serves.
func (s *Server) ListenAndServe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	return s.Serve(ln)
}

// Shutdown stops accepting connections and lets running requests finish
// for up to Config.ShutdownGrace (or until ctx ends); then it cancels the
// rest, which end with an error event (streams) or 503, and closes every
// connection. It returns ctx's error if ctx ended before the requests did.
// Calls after the first return the first call's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { s.stopErr = s.shutdown(ctx) })
	return s.stopErr
}

func (s *Server) shutdown(ctx context.Context) error {
	s.draining.Store(true)
	grace, cancel := context.WithTimeout(ctx, s.cfg.ShutdownGrace)
	defer cancel()
	err := s.http.Shutdown(grace)
	if err != nil {
		s.cancel(errShuttingDown)
		// Cancelled handlers return at once; waiting for them lets streams
		// write their final error event before the connections close.
		select {
		case <-s.inflight.idle():
		case <-ctx.Done():
		}
		err = errors.Join(err, s.http.Close())
	}
	s.cancel(errShuttingDown)
	return errors.Join(err, s.metrics.shutdown(context.WithoutCancel(ctx)))
}

// track wraps every request: it refuses new work while draining, bounds
// the request by RequestTimeout, counts it for Shutdown, traces it and
// records its status.
func (s *Server) track(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if s.draining.Load() && c.Path() != "/health" && c.Path() != "/metrics" {
			return errShuttingDown
		}
		s.inflight.add()
		defer s.inflight.done()
		ctx, cancel := context.WithTimeout(req.Context(), s.cfg.RequestTimeout)
		defer cancel()
		ctx, span := s.startSpan(ctx, c)
		defer span.End()
		c.SetRequest(req.WithContext(ctx))
		start := s.now()
		err := next(c)
		status := c.Response().Status
		if err != nil {
			status = toAPIError(err).Status
		}
		elapsed := s.now().Sub(start)
		s.endSpan(span, c, status, err)
		s.metrics.request(ctx, c, status, elapsed)
		s.log.Debug("request", "method", req.Method, "route", c.Path(), "status", status, "duration", elapsed,
			"adapter", c.Get(adapterKey))
		return err
	}
}

// inflight counts running handlers. Unlike a WaitGroup it may gain a
// request while Shutdown waits for it to reach zero.
type inflight struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed when n drops to 0; nil while nobody waits
}

func (f *inflight) add() {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
}

func (f *inflight) done() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n--; f.n == 0 && f.zero != nil {
		close(f.zero)
		f.zero = nil
	}
}

// idle returns a channel closed once no handler runs.
func (f *inflight) idle() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		c := make(chan struct{})
		close(c)
		return c
	}
	if f.zero == nil {
		f.zero = make(chan struct{})
	}
	return f.zero
}

// requireKey accepts a request whose bearer token equals one of the
// non-empty keys; with no non-empty key it accepts everything.
func (s *Server) requireKey(keys ...string) echo.MiddlewareFunc {
	var want [][]byte
	for _, k := range keys {
		if k != "" {
			want = append(want, []byte(k))
		}
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if len(want) == 0 {
			return next
		}
		return func(c echo.Context) error {
			h := c.Request().Header.Get(echo.HeaderAuthorization)
			token, ok := strings.CutPrefix(h, "Bearer ")
			if ok {
				for _, k := range want {
					if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), k) == 1 {
						return next(c)
					}
				}
			}
			return &APIError{Status: http.StatusUnauthorized, Type: "invalid_request_error", Code: "invalid_api_key",
				Message: "missing or incorrect API key: send 'Authorization: Bearer <key>'"}
		}
	}
}

// writeJSON writes a final JSON response under the write timeout.
func (s *Server) writeJSON(c echo.Context, v any) error {
	_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	return c.JSON(http.StatusOK, v)
}

// readBody reads a JSON body of at most MaxBodyBytes within BodyReadTimeout.
// The read deadline is per request and cleared afterwards: http.Server's
// ReadTimeout would also fire during a long stream and cancel it.
func (s *Server) readBody(c echo.Context) ([]byte, error) {
	rc := http.NewResponseController(c.Response())
	_ = rc.SetReadDeadline(time.Now().Add(s.cfg.BodyReadTimeout))
	r := http.MaxBytesReader(c.Response(), c.Request().Body, s.cfg.MaxBodyBytes)
	b, err := io.ReadAll(r)
	var mb *http.MaxBytesError
	switch {
	case err == nil:
		// On failure the deadline stays: net/http drains an unread body
		// before it sends the response, which must not wait on the client.
		_ = rc.SetReadDeadline(time.Time{})
		return b, nil
	case errors.As(err, &mb):
		return nil, err
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, &APIError{Status: http.StatusRequestTimeout, Type: "invalid_request_error", Code: "request_timeout",
			Message: "the request body did not arrive in time", Err: err}
	}
	return nil, badRequest("", "", "reading the request body: %v", err)
}

func randomID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return prefix + hex.EncodeToString(b[:])
}

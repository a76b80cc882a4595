package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/loraplex/loraplex/server/openai"
)

// APIError is an error with its HTTP status and OpenAI error fields.
// Handlers return it (or errors that wrap the package sentinels) and the
// central handler writes it.
type APIError struct {
	Status  int
	Type    string
	Code    string
	Param   string
	Message string
	Err     error
}

func (e *APIError) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *APIError) Unwrap() error { return e.Err }

// Body is the OpenAI error object for e.
func (e *APIError) Body() openai.ErrorResponse {
	return openai.NewErrorResponse(e.Type, e.Message, e.Param, e.Code)
}

func badRequest(param, code, format string, args ...any) *APIError {
	return &APIError{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: param, Code: code, Message: fmt.Sprintf(format, args...)}
}

// statusTypes gives the OpenAI error type for statuses without a more
// specific mapping.
var statusTypes = map[int]string{
	http.StatusUnauthorized:          "invalid_request_error",
	http.StatusForbidden:             "permission_error",
	http.StatusNotFound:              "invalid_request_error",
	http.StatusMethodNotAllowed:      "invalid_request_error",
	http.StatusRequestEntityTooLarge: "invalid_request_error",
	http.StatusUnsupportedMediaType:  "invalid_request_error",
	http.StatusTooManyRequests:       "rate_limit_error",
	http.StatusServiceUnavailable:    "server_error",
	http.StatusGatewayTimeout:        "timeout_error",
}

// toAPIError maps any error a handler returned to an APIError. Only errors
// nothing else claims become 500, with a generic message: their text may
// carry internals.
func toAPIError(err error) *APIError {
	var ae *APIError
	var re *openai.RequestError
	var he *echo.HTTPError
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &re):
		return &APIError{Status: 400, Type: "invalid_request_error", Param: re.Param, Message: re.Message, Err: err}
	case errors.As(err, &mb):
		return &APIError{Status: 413, Type: "invalid_request_error", Code: "request_too_large",
			Message: fmt.Sprintf("the request body exceeds %d bytes", mb.Limit), Err: err}
	case errors.As(err, &he):
		typ := statusTypes[he.Code]
		if typ == "" {
			typ = "invalid_request_error"
		}
		if he.Code >= 500 {
			typ = "server_error"
		}
		return &APIError{Status: he.Code, Type: typ, Message: fmt.Sprint(he.Message), Err: err}
	case errors.Is(err, ErrModelNotFound):
		return &APIError{Status: 404, Type: "invalid_request_error", Param: "model", Code: "model_not_found", Message: err.Error(), Err: err}
	case errors.Is(err, ErrQueueFull):
		return &APIError{Status: 429, Type: "rate_limit_error", Code: "rate_limit_exceeded",
			Message: "the server is at capacity; retry after the Retry-After interval", Err: err}
	case errors.Is(err, ErrTooLong):
		return &APIError{Status: 400, Type: "invalid_request_error", Param: "messages", Code: "context_length_exceeded", Message: err.Error(), Err: err}
	case errors.Is(err, ErrTemplate):
		return &APIError{Status: 400, Type: "invalid_request_error", Param: "messages", Code: "chat_template_error", Message: err.Error(), Err: err}
	case errors.Is(err, ErrInvalidName):
		return &APIError{Status: 400, Type: "invalid_request_error", Param: "lora_name", Code: "invalid_adapter_name", Message: err.Error(), Err: err}
	case errors.Is(err, ErrBadRequest):
		return &APIError{Status: 400, Type: "invalid_request_error", Message: err.Error(), Err: err}
	case errors.Is(err, ErrAdapterExists):
		return &APIError{Status: 400, Type: "invalid_request_error", Param: "lora_name", Code: "adapter_exists", Message: err.Error(), Err: err}
	case errors.Is(err, ErrInvalidAdapter):
		return &APIError{Status: 400, Type: "invalid_request_error", Param: "lora_path", Code: "invalid_adapter", Message: err.Error(), Err: err}
	case errors.Is(err, ErrAdapterBusy):
		return &APIError{Status: 409, Type: "invalid_request_error", Param: "lora_name", Code: "adapter_in_use", Message: err.Error(), Err: err}
	case errors.Is(err, ErrUnavailable):
		return &APIError{Status: 503, Type: "server_error", Code: "server_unavailable", Message: err.Error(), Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &APIError{Status: 504, Type: "timeout_error", Code: "request_timeout", Message: "the request took longer than the server's request timeout", Err: err}
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this, but logs and metrics
		// should not call it a server error. 499 is nginx's convention.
		return &APIError{Status: 499, Type: "invalid_request_error", Code: "client_closed_request", Message: "the request was cancelled", Err: err}
	}
	return &APIError{Status: 500, Type: "server_error", Code: "internal_error", Message: "internal server error", Err: err}
}

// handleError is echo's HTTPErrorHandler. Echo calls it only for errors a
// handler returned; once a stream has started, handlers report errors as SSE
// events themselves and this only logs.
func (s *Server) handleError(err error, c echo.Context) {
	ae := toAPIError(err)
	if ae.Status >= 500 && ae.Status != http.StatusServiceUnavailable {
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Path(), "err", err)
	}
	if c.Response().Committed {
		return
	}
	if ae.Status == http.StatusTooManyRequests || ae.Status == http.StatusServiceUnavailable {
		c.Response().Header().Set("Retry-After", strconv.Itoa(s.cfg.RetryAfter))
	}
	if err := c.JSON(ae.Status, ae.Body()); err != nil {
		s.log.Debug("writing error response", "err", err)
	}
}

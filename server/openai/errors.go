package openai

import (
	"errors"
	"fmt"
)

// ErrInvalidRequest marks every decoding or validation failure; errors.As to
// *RequestError gives the offending parameter.
var ErrInvalidRequest = errors.New("invalid request")

// RequestError is a client mistake in a request body: it becomes a 400
// invalid_request_error naming Param.
type RequestError struct {
	Param   string // JSON path of the offending field, "" when not one field
	Message string
}

func (e *RequestError) Error() string { return e.Message }

// Unwrap lets callers match ErrInvalidRequest.
func (e *RequestError) Unwrap() error { return ErrInvalidRequest }

func invalid(param, format string, args ...any) *RequestError {
	return &RequestError{Param: param, Message: fmt.Sprintf(format, args...)}
}

// ErrorObject is the body of every error response. All four keys are always
// present; Param and Code are null when unknown.
type ErrorObject struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// ErrorResponse is `{"error": {...}}`, the shape the official SDKs parse.
type ErrorResponse struct {
	Error ErrorObject `json:"error"`
}

// NewErrorResponse builds the error body; empty param or code become null.
func NewErrorResponse(typ, message, param, code string) ErrorResponse {
	o := ErrorObject{Message: message, Type: typ}
	if param != "" {
		o.Param = &param
	}
	if code != "" {
		o.Code = &code
	}
	return ErrorResponse{Error: o}
}

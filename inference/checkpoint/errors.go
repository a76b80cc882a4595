package checkpoint

import "errors"

var (
	// ErrExists means the output directory already holds files and
	// overwriting was not requested.
	ErrExists = errors.New("checkpoint: output directory exists and is not empty")

	// ErrNotQuantized means a decoder weight of the model is not NF4.
	ErrNotQuantized = errors.New("checkpoint: model weights are not NF4")

	// ErrMismatch means the model does not belong to the source directory
	// it is saved against (a tensor is missing or has another shape or
	// dtype).
	ErrMismatch = errors.New("checkpoint: model does not match the source checkpoint")

	// ErrQuantState means a quant_state JSON is malformed.
	ErrQuantState = errors.New("checkpoint: malformed bitsandbytes quant_state")

	// ErrUnsupported means a well-formed quant_state describes a
	// quantization this project does not read or write (fp4, other block
	// sizes, no double quantization).
	ErrUnsupported = errors.New("checkpoint: unsupported bitsandbytes quantization")
)

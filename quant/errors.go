package quant

import "errors"

// ErrFormat reports checkpoint tensors that do not describe a weight this
// package can load (wrong sizes, unsupported quantization type or block size).
var ErrFormat = errors.New("quant: unsupported or inconsistent quantized weight")

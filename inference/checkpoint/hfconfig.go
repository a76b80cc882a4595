package checkpoint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// bnbQuantConfig is the quantization_config transformers writes for
// BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
// bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=bfloat16).
const bnbQuantConfig = `{"quant_method":"bitsandbytes","load_in_4bit":true,"load_in_8bit":false,` +
	`"bnb_4bit_quant_type":"nf4","bnb_4bit_use_double_quant":true,"bnb_4bit_compute_dtype":"bfloat16",` +
	`"bnb_4bit_quant_storage":"uint8","llm_int8_skip_modules":null,"llm_int8_threshold":6.0,` +
	`"llm_int8_has_fp16_weight":false,"llm_int8_enable_fp32_cpu_offload":false}`

const quantConfigKey = "quantization_config"

type member struct {
	key string
	val json.RawMessage
}

// withQuantConfig returns the config.json src with quantization_config set
// to bnbQuantConfig. Every other member keeps its position and its value's
// bytes (numbers such as 1e-05 stay as written); only whitespace is
// normalized to transformers' two-space indent. A source quantization_config
// is replaced. The new key goes where sorting puts it when the source keys
// are sorted (as transformers writes them), else last.
func withQuantConfig(src []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("config.json is not a JSON object")
	}
	var ms []member
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("config.json: %w", err)
		}
		k, _ := t.(string) // object keys are always strings
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("config.json: key %q: %w", k, err)
		}
		if k != quantConfigKey {
			ms = append(ms, member{k, v})
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("config.json: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("config.json: data after the JSON object")
	}
	at := len(ms)
	if slices.IsSortedFunc(ms, func(a, b member) int { return strings.Compare(a.key, b.key) }) {
		at, _ = slices.BinarySearchFunc(ms, quantConfigKey, func(m member, k string) int { return strings.Compare(m.key, k) })
	}
	ms = slices.Insert(ms, at, member{quantConfigKey, json.RawMessage(bnbQuantConfig)})

	var flat bytes.Buffer
	enc := json.NewEncoder(&flat)
	enc.SetEscapeHTML(false)
	flat.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			flat.WriteByte(',')
		}
		if err := enc.Encode(m.key); err != nil {
			return nil, err
		}
		flat.WriteByte(':')
		flat.Write(m.val)
	}
	flat.WriteByte('}')
	var out bytes.Buffer
	if err := json.Indent(&out, flat.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// Package chat renders a model's Hugging Face chat template (the Jinja
// chat_template of tokenizer_config.json) into the prompt text the model was
// trained on, following transformers' rendering contract: trim_blocks,
// lstrip_blocks, loop controls, no autoescape, a json.dumps-compatible
// tojson, raise_exception and strftime_now.
//
// Engine choice: github.com/nikolalohinski/gonja/v2, a maintained pure-Go
// Jinja that already parses what real templates use (namespace, loop.*,
// slicing, break/continue, macros, Python string and dict methods). Writing
// our own engine would mean re-deriving all of that; jryberg/gojinja is not
// served by the Go module proxy (and autoescapes by default), and
// flosch/pongo2 speaks Django rather than Jinja. gonja's deviations that
// matter for chat templates are patched here and pinned by golden tests
// against Python Jinja2: tojson (Python separators, no ASCII escaping,
// ordered dicts, Python float spelling), str.strip/lstrip/rstrip/split/
// replace defaults, ordered dict .items()/.keys()/.values() and the
// items/dictsort filters, lstrip_blocks (gonja also strips spaces between
// two tags on one line), transformers' {% generation %} tag, and template
// loading confined to memory so include/import cannot read files.
// Known remaining differences: printing none gives "" (Python "None") and
// ** yields a float; real chat templates do neither.
package chat

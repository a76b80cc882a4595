// Package dataset reads OpenAI fine-tuning files (chat "messages" JSONL and
// legacy prompt/completion JSONL), validates them with line-numbered errors
// before a job starts, and tokenises each example into input ids plus a mask
// of the tokens the loss is computed on.
package dataset

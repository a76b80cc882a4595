// Package openai holds the wire types of the OpenAI-compatible API: request
// decoding with the validation that needs no server state, and the response,
// stream-chunk and error shapes. It imports nothing of the engine so that load
// generators and tests can share it.
package openai

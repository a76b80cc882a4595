// Package sample turns a row of logits into the next token: greedy or
// temperature sampling with top-k, top-p and min-p filters, OpenAI presence,
// frequency and logit-bias adjustments and the Hugging Face repetition
// penalty, plus the log-softmax helpers behind OpenAI logprobs.
//
// A Sampler belongs to one sequence: it owns its random stream (seeded per
// request, so a fixed seed reproduces a completion) and reuses its scratch
// buffers, so sampling a token allocates nothing.
package sample

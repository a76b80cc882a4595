// Package sched runs many generation requests over one model at once by
// continuous batching: every step feeds each running sequence's next token,
// plus chunks of waiting prompts, through a single forward pass, samples each
// sequence's next token and streams it to its caller as an Event.
//
// The scheduler admits requests round-robin across adapters, keeps keys and
// values in a paged KV cache under a fixed budget (preempting and later
// recomputing the newest sequence when blocks run out), and frees a
// request's resources as soon as it finishes, fails or its context is
// cancelled.
package sched

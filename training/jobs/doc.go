// Package jobs is the job manager behind the OpenAI files and fine-tuning
// API: it stores uploads, runs fine-tuning jobs on a background goroutine
// with its own worker pool (on the Low side of the server's priority gate,
// so inference goes first), checkpoints them so a restart resumes where it
// stopped, and hands finished adapters to a publisher that makes them
// servable.
package jobs

package sched

import (
	"context"
	"strings"
)

// Result is a whole generation, collected from a request's events.
type Result struct {
	Tokens   []int32
	Text     string
	Logprobs []float32        // per token, when the request asked for logprobs
	Top      [][]TokenLogprob // per token, when it asked for alternatives
	Prompt   []PromptToken    // when it asked for prompt logprobs
	Finish   string
	Usage    Usage
}

// Generate submits r and waits for it to finish. It returns the final
// event's error, or ctx's error when ctx ends first.
func Generate(ctx context.Context, s *Scheduler, r *Request) (Result, error) {
	var res Result
	var text strings.Builder
	ch, err := s.Submit(ctx, r)
	if err != nil {
		return res, err
	}
	for ev := range ch {
		if ev.Prompt != nil {
			res.Prompt = ev.Prompt
		}
		text.WriteString(ev.Text)
		if ev.Token >= 0 {
			res.Tokens = append(res.Tokens, ev.Token)
			if r.Logprobs >= 0 {
				res.Logprobs = append(res.Logprobs, ev.Logprob)
				res.Top = append(res.Top, ev.Top)
			}
		}
		if ev.Finish != "" {
			res.Finish, res.Usage, err = ev.Finish, ev.Usage, ev.Err
		}
	}
	res.Text = text.String()
	if res.Finish == "" {
		// The channel closed without a final event: ctx ended.
		return res, ctx.Err()
	}
	return res, err
}

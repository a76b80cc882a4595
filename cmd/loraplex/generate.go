package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/loraplex/loraplex/inference/chat"
	"github.com/loraplex/loraplex/inference/sample"
	"github.com/loraplex/loraplex/inference/sched"
)

func init() {
	register(command{"generate", "generate a continuation of one prompt", runGenerate})
}

// generateOutput is the --json contract of `loraplex generate`.
type generateOutput struct {
	PromptIDs    []int32 `json:"prompt_ids"`
	IDs          []int32 `json:"ids"`
	Text         string  `json:"text"`
	FinishReason string  `json:"finish_reason"`
}

func runGenerate(ctx context.Context, args []string) error {
	fs := newFlags("generate")
	var b baseFlags
	b.bind(fs, "Hugging Face model directory, or hf:ORG/NAME")
	adapterDir := fs.String("adapter", "", "PEFT adapter directory (LoRA or prompt tuning) to apply")
	prompt := fs.String("prompt", "", "prompt text (BOS added as the tokenizer's config says)")
	promptIDs := fs.String("prompt-ids", "", "prompt as comma-separated token ids, used as given")
	asChat := fs.Bool("chat", false, "wrap --prompt as a user message in the model's chat template")
	maxTokens := fs.Int("max-tokens", 128, "most tokens to generate")
	temperature := fs.Float32("temperature", 1, "sampling temperature; 0 is greedy")
	topP := fs.Float32("top-p", 1, "nucleus sampling: keep the smallest set of tokens with this much probability")
	topK := fs.Int("top-k", 0, "keep only the K most likely tokens (0: all)")
	minP := fs.Float32("min-p", 0, "drop tokens less likely than min-p times the most likely one")
	repPenalty := fs.Float32("repetition-penalty", 1, "penalise tokens already in the prompt or output (1: off)")
	seed := fs.Int64("seed", 0, "random seed; the same seed gives the same output")
	stops := fs.StringArray("stop", nil, "stop string (repeatable); not included in the output")
	asJSON := fs.Bool("json", false, `print {"prompt_ids","ids","text","finish_reason"} as JSON`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*prompt == "") == (*promptIDs == "") {
		return errors.New("give exactly one of --prompt or --prompt-ids")
	}
	if *maxTokens < 1 {
		return fmt.Errorf("--max-tokens %d: must be at least 1", *maxTokens)
	}
	_, m, tok, pool, err := b.load(ctx, false)
	if err != nil {
		return err
	}
	defer m.Close()
	adapter, err := loadAdapter(*adapterDir, m, pool)
	if err != nil {
		return err
	}

	var ids []int32
	switch {
	case *promptIDs != "":
		if ids, err = parseIDs(*promptIDs, m.Cfg.Vocab); err != nil {
			return fmt.Errorf("--prompt-ids: %w", err)
		}
	case tok == nil:
		return errors.New("the model directory has no tokenizer.json: use --prompt-ids")
	case *asChat:
		tmpl, err := chat.Compile(tok.ChatTemplate())
		if err != nil {
			return fmt.Errorf("the model's chat template: %w", err)
		}
		text, err := tmpl.Render([]chat.Message{{Role: "user", Content: *prompt}}, chatOptions(tok))
		if err != nil {
			return err
		}
		ids = tok.Encode(text, false)
	default:
		ids = tok.Encode(*prompt, true)
	}

	sp := sample.Params{Temperature: *temperature, TopP: *topP, TopK: *topK, MinP: *minP, RepetitionPenalty: *repPenalty}
	if fs.Changed("seed") {
		sp.Seed = seed
	}
	s, err := sched.New(m, tok, sched.Config{Pool: pool, MaxRunning: 1, MaxQueue: 1})
	if err != nil {
		return err
	}
	defer s.Close(context.Background())
	res, err := sched.Generate(ctx, s, &sched.Request{Prompt: ids, Adapter: adapter, Sampling: sp, MaxTokens: *maxTokens, Stop: *stops, Logprobs: -1})
	if err != nil {
		return err
	}
	if *asJSON {
		out := generateOutput{PromptIDs: ids, IDs: res.Tokens, Text: res.Text, FinishReason: res.Finish}
		if out.IDs == nil {
			out.IDs = []int32{}
		}
		return json.NewEncoder(stdout).Encode(out)
	}
	fmt.Fprintln(stdout, res.Text)
	return nil
}

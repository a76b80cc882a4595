package main

import (
	"context"
	"encoding/json"

	"github.com/loraplex/loraplex/inference/chat"
	"github.com/loraplex/loraplex/inference/tokenizer"
)

func init() {
	register(command{"tokenize", "print the token ids of a text", runTokenize})
}

func runTokenize(ctx context.Context, args []string) error {
	fs := newFlags("tokenize")
	dir := fs.String("model", "", "Hugging Face model directory with tokenizer.json")
	text := fs.String("text", "", "text to tokenize")
	noSpecial := fs.Bool("no-special", false, "do not add special tokens such as BOS")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tok, err := tokenizer.Load(*dir)
	if err != nil {
		return err
	}
	ids := tok.Encode(*text, !*noSpecial)
	if ids == nil {
		ids = []int32{}
	}
	return json.NewEncoder(stdout).Encode(map[string][]int32{"ids": ids})
}

// chatOptions passes the tokenizer's special tokens to a chat template.
func chatOptions(tok *tokenizer.Tokenizer) chat.RenderOptions {
	sp := tok.SpecialTokens()
	extra := make(map[string]any, len(sp))
	for k, v := range sp {
		extra[k] = v
	}
	return chat.RenderOptions{AddGenerationPrompt: true, BOS: sp["bos_token"], EOS: sp["eos_token"], Extra: extra}
}

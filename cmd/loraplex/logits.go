package main

import (
	"bufio"
	"context"
	"fmt"
	"strconv"

	"github.com/loraplex/loraplex/inference/kvcache"
	"github.com/loraplex/loraplex/inference/model"
)

func init() {
	register(command{"logits", "print the raw logits at every position of a token sequence", runLogits})
}

func runLogits(ctx context.Context, args []string) error {
	fs := newFlags("logits")
	var b baseFlags
	b.bind(fs, "Hugging Face model directory, or hf:ORG/NAME")
	adapterDir := fs.String("adapter", "", "PEFT adapter directory (LoRA or prompt tuning) to apply")
	idsFlag := fs.String("ids", "", "comma-separated token ids")
	if err := fs.Parse(args); err != nil {
		return err
	}
	_, m, _, pool, err := b.load(ctx, false)
	if err != nil {
		return err
	}
	defer m.Close()
	ids, err := parseIDs(*idsFlag, m.Cfg.Vocab)
	if err != nil {
		return fmt.Errorf("--ids: %w", err)
	}
	adapter, err := loadAdapter(*adapterDir, m, pool)
	if err != nil {
		return err
	}
	in := model.SeqInput{Tokens: ids, Adapter: adapter, AllLogits: true, KV: &kvcache.Seq{}}
	if adapter != nil {
		in.Embeds = adapter.Prompt
	}
	rows := len(ids) + len(in.Embeds)/m.Cfg.Hidden
	const block = 16
	kv := kvcache.NewPool(m.Cfg.Layers, m.Cfg.KVHeads, m.Cfg.HeadDim, block, (rows+block-1)/block)
	out, err := m.Step(pool, model.NewWorkspace(m, rows, 1), kv, []model.SeqInput{in})
	if err != nil {
		return err
	}
	// Only the real tokens' positions are printed: prompt-tuning rows are
	// not positions of the input.
	logits := out[0][(rows-len(ids))*m.Cfg.Vocab:]
	return writeLogits(logits, m.Cfg.Vocab)
}

// writeLogits prints {"logits": [[...], ...]} with float32 values spelled
// so they round-trip exactly.
func writeLogits(logits []float32, vocab int) error {
	w := bufio.NewWriter(stdout)
	w.WriteString(`{"logits": [`)
	var buf []byte
	for p := 0; p < len(logits)/vocab; p++ {
		if p > 0 {
			w.WriteString(", ")
		}
		w.WriteByte('[')
		for i, v := range logits[p*vocab : (p+1)*vocab] {
			if i > 0 {
				w.WriteString(", ")
			}
			buf = strconv.AppendFloat(buf[:0], float64(v), 'g', -1, 32)
			w.Write(buf)
		}
		w.WriteByte(']')
	}
	w.WriteString("]}\n")
	return w.Flush()
}

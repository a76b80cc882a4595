package main

import (
	"context"
	"fmt"
	"os"

	"github.com/loraplex/loraplex/inference/checkpoint"
)

func init() {
	register(command{"quantize", "write an NF4 (bitsandbytes-format) checkpoint of a model", runQuantize})
}

func runQuantize(ctx context.Context, args []string) error {
	fs := newFlags("quantize")
	var b baseFlags
	b.bind(fs, "Hugging Face model directory, or hf:ORG/NAME")
	out := fs.String("out", "", "output directory for the quantized checkpoint")
	overwrite := fs.Bool("overwrite", false, "replace --out if it already holds files")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("--out is required")
	}
	b.quant = "nf4"
	b.head = "keep" // the checkpoint copies the stored lm_head
	dir, m, _, _, err := b.load(ctx, false)
	if err != nil {
		return err
	}
	defer m.Close()
	pr := newProgress("write " + *out)
	err = checkpoint.Save(ctx, m, dir, *out, checkpoint.Options{Overwrite: *overwrite, Progress: func(done, total int) { pr.update(done, total, "tensors") }})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "loraplex: wrote %s (NF4, double quantization, bitsandbytes layout)\n", *out)
	return nil
}

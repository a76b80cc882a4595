// Command loraplex serves an NF4-quantized Llama-family base model with
// per-request LoRA and prompt-tuning adapters over an OpenAI-compatible API,
// trains new adapters, and load-tests servers. Each subcommand lives in its
// own file; this file only dispatches.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string) error
}

var commands []command

// stdout receives every command's result; tests capture it.
var stdout io.Writer = os.Stdout

func register(c command) { commands = append(commands, c) }

func usage() {
	fmt.Fprintln(os.Stderr, "usage: loraplex <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(os.Stderr, "\nRun 'loraplex <command> --help' for the flags of a command.")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, c := range commands {
		if c.name != os.Args[1] {
			continue
		}
		err := c.run(ctx, os.Args[2:])
		if errors.Is(err, pflag.ErrHelp) {
			return
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "loraplex %s: %v\n", c.name, err)
			os.Exit(1)
		}
		return
	}
	fmt.Fprintf(os.Stderr, "loraplex: unknown command %q\n", os.Args[1])
	usage()
	os.Exit(2)
}

// newFlags returns a flag set that reports errors instead of exiting, so
// every failure ends in main's one-line message.
func newFlags(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("loraplex "+name, pflag.ContinueOnError)
	fs.SortFlags = false
	return fs
}

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/rbee-dev/rbee/gguf"
	"github.com/spf13/cobra"
)

// newModelCmd is `rbee model`: generate and inspect GGUF model files.
func newModelCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use: "model",
		Example: `  rbee model synth --preset tiny --out tiny.gguf
  rbee model inspect tiny.gguf`,
		Short: "Generate and inspect GGUF model files",
	}
	cmd.AddCommand(newModelSynthCmd(), newModelInspectCmd())
	return cmd
}

func newModelSynthCmd() *cobra.Command {
	var preset, out string
	var seed int64
	var descr []string
	for _, p := range gguf.Presets() {
		descr = append(descr, fmt.Sprintf("  %-16s %s", p.Name, p.Description))
	}
	cmd := &cobra.Command{
		Use: "synth --preset NAME --out FILE [--seed N]",
		Example: `  rbee model synth --preset tiny --out tiny.gguf
  rbee model synth --preset tinyllama-q4_0 --out tl.gguf --seed 2`,
		Short: "Write a random-weight llama GGUF model (deterministic by seed)",
		Long: "Write a llama-architecture GGUF model with random weights, a SentencePiece\n" +
			"tokenizer with byte fallback and a ChatML chat template. The same preset and\n" +
			"seed always give a byte-identical file. Presets:\n" + strings.Join(descr, "\n"),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := gguf.LookupPreset(preset); err != nil {
				return exitCode(1, err)
			}
			if out == "" {
				return exitCode(1, fmt.Errorf("--out FILE is required: where to write the model"))
			}
			// On Ctrl-C, stop writing and remove the partial temporary file.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := gguf.SynthFile(ctx, out, preset, seed)
			if errors.Is(err, context.Canceled) {
				return exitCode(1, fmt.Errorf("interrupted: %s was not written", out))
			}
			if err != nil {
				return exitCode(1, err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "wrote %s\n", res.Path)
			fmt.Fprintf(w, "preset: %s (seed %d)\n", res.Preset, res.Seed)
			fmt.Fprintf(w, "size:   %d bytes (%s)\n", res.Size, gguf.FormatBytes(res.Size))
			fmt.Fprintf(w, "sha256: %s\n", res.SHA256)
			return nil
		},
	}
	cmd.Flags().StringVar(&preset, "preset", "tiny", "model preset: "+strings.Join(gguf.PresetNames(), " | "))
	cmd.Flags().StringVar(&out, "out", "", "output file (written atomically)")
	cmd.Flags().Int64Var(&seed, "seed", gguf.DefaultSeed, "random seed for the weights")
	return cmd
}

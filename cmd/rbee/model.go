package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

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

func newModelInspectCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use: "inspect FILE",
		Example: `  rbee model inspect tiny.gguf
  rbee model inspect tiny.gguf --json`,
		Short: "Print a GGUF model's architecture, parameters, quantization and context length",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := gguf.ReadFile(args[0])
			if err != nil {
				return exitCode(1, fmt.Errorf("cannot inspect model: %w", err))
			}
			s := f.Summary()
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				return enc.Encode(s)
			}
			printSummary(cmd.OutOrStdout(), args[0], s)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON")
	return cmd
}

func printSummary(out io.Writer, path string, s gguf.Summary) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	orNone := func(v string) string {
		if v == "" {
			return "(unknown)"
		}
		return v
	}
	fmt.Fprintf(tw, "file:\t%s\n", path)
	fmt.Fprintf(tw, "name:\t%s\n", orNone(s.Name))
	fmt.Fprintf(tw, "architecture:\t%s\n", orNone(s.Architecture))
	fmt.Fprintf(tw, "parameters:\t%s (%d)\n", gguf.FormatParameters(s.Parameters), s.Parameters)
	fmt.Fprintf(tw, "quantization:\t%s\n", orNone(s.Quantization))
	ctx := "(unknown)"
	if s.ContextLength > 0 {
		ctx = fmt.Sprint(s.ContextLength)
	}
	fmt.Fprintf(tw, "context length:\t%s\n", ctx)
	fmt.Fprintf(tw, "size:\t%s (%d bytes)\n", gguf.FormatBytes(s.Size), s.Size)
	fmt.Fprintf(tw, "tensors:\t%d\n", s.TensorCount)
	tmpl := "no"
	if s.HasChatTemplate {
		tmpl = "yes"
	}
	fmt.Fprintf(tw, "chat template:\t%s\n", tmpl)
	tw.Flush()
}

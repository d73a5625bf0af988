package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"

	"github.com/rbee-dev/rbee/digest"
	"github.com/rbee-dev/rbee/gguf"
	"github.com/spf13/cobra"
)

// inspectReport is what `rbee model inspect` prints: the summary of the
// whole model (every shard of a split one) and its files.
type inspectReport struct {
	gguf.Summary
	TensorBytes int64       `json:"tensor_bytes"`
	SHA256      string      `json:"sha256,omitempty"` // one file, with --sha256
	Shards      []shardInfo `json:"shards,omitempty"` // a split model's files, in order
}

// shardInfo is one file of a split model.
type shardInfo struct {
	File   string `json:"file"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"`
}

func newModelInspectCmd() *cobra.Command {
	var asJSON, withSum bool
	cmd := &cobra.Command{
		Use: "inspect FILE",
		Example: `  rbee model inspect tiny.gguf
  rbee model inspect tiny.gguf --json
  rbee model inspect --sha256 qwen3-00002-of-00003.gguf`,
		Short: "Print a GGUF model's architecture, parameters, quantization and context length",
		Long: "Print a GGUF model's architecture, parameters, quantization and context length.\n" +
			"Any shard of a split model (NAME-00002-of-00003.gguf) stands for the whole\n" +
			"model: every shard is read and listed, and the counts are over all of them.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := inspectModel(args[0], withSum)
			if err != nil {
				return exitCode(1, fmt.Errorf("cannot inspect model: %w", err))
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				return enc.Encode(r)
			}
			printSummary(cmd.OutOrStdout(), args[0], r)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON")
	cmd.Flags().BoolVar(&withSum, "sha256", false, "also hash the file (every shard of a split model)")
	return cmd
}

// inspectModel reads the model path is a file of and, with withSum, hashes
// each of its files.
func inspectModel(path string, withSum bool) (inspectReport, error) {
	files, err := gguf.ReadAnyShard(path)
	if err != nil {
		return inspectReport{}, err
	}
	whole := gguf.Merge(files)
	r := inspectReport{Summary: whole.Summary(), TensorBytes: whole.Metadata().TensorBytes}
	paths := []string{path}
	if len(files) > 1 {
		paths = gguf.ShardPaths(gguf.FirstShardPath(path))
	}
	for i, p := range paths {
		sh := shardInfo{File: filepath.Base(p), Size: files[i].Size}
		if withSum {
			if sh.SHA256, _, err = digest.File(p); err != nil {
				return inspectReport{}, fmt.Errorf("hash %s: %w", p, err)
			}
		}
		if len(files) == 1 {
			r.SHA256 = sh.SHA256
			break
		}
		r.Shards = append(r.Shards, sh)
	}
	return r, nil
}

func printSummary(out io.Writer, path string, r inspectReport) {
	s := r.Summary
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	orNone := func(v string) string {
		if v == "" {
			return "(unknown)"
		}
		return v
	}
	fmt.Fprintf(tw, "file:\t%s\n", path)
	for i, sh := range r.Shards {
		fmt.Fprintf(tw, "shard %d of %d:\t%s  %s (%d bytes)%s\n", i+1, len(r.Shards), sh.File, gguf.FormatBytes(sh.Size), sh.Size, sumText(sh.SHA256))
	}
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
	if r.SHA256 != "" {
		fmt.Fprintf(tw, "sha256:\t%s\n", r.SHA256)
	}
	fmt.Fprintf(tw, "tensor data:\t%s (%d bytes)\n", gguf.FormatBytes(r.TensorBytes), r.TensorBytes)
	fmt.Fprintf(tw, "tensors:\t%d\n", s.TensorCount)
	tmpl := "no"
	if s.HasChatTemplate {
		tmpl = "yes"
	}
	fmt.Fprintf(tw, "chat template:\t%s\n", tmpl)
	tw.Flush()
}

func sumText(sum string) string {
	if sum == "" {
		return ""
	}
	return "  sha256 " + sum
}

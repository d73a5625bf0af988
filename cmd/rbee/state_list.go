package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/spec"
	"github.com/rbee-dev/rbee/state"
	"github.com/spf13/cobra"
)

func newStateListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use: "list",
		Example: `  rbee state list
  rbee state list --config demo/rbee.hcl
  rbee state list -json | jq -r 'select(.record.cpu_variant) | .address + " " + .record.cpu_variant'`,
		Short: "List the resources in the state with their status",
		Long: `Lists every resource in the state with its status and a summary: for a
node its hive and the ggml CPU library its workers load (cpu_variant); for a
worker its backend, GPU device and offloaded layers (cuda) and CPU library,
as the last plan, apply or status refresh found them. -json writes one
object per resource with the whole record.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, snap, err := openSnapshot(cmd)
			if err != nil {
				return err
			}
			if l, err := st.CurrentLock(cmd.Context()); err == nil && l != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "Note: the state is locked by %s\n", l)
			}
			if snap.Len() == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "The state in %s is empty: nothing has been applied yet.\n", describeState(st))
				return nil
			}
			if asJSON {
				return writeStateListJSON(cmd.OutOrStdout(), snap)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ADDRESS\tSTATUS\tDETAILS")
			for _, a := range snap.Addrs() {
				rec, _ := snap.Get(a)
				status, details := describe(rec)
				fmt.Fprintf(tw, "%s\t%s\t%s\n", a, dash(status), details)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "write one JSON object per resource (NDJSON): address, status, record")
	return cmd
}

// stateListEntry is one line of state list -json.
type stateListEntry struct {
	Address string       `json:"address"`
	Status  string       `json:"status"`
	Record  state.Record `json:"record"`
}

func writeStateListJSON(w io.Writer, snap *state.Snapshot) error {
	enc := json.NewEncoder(w)
	for _, a := range snap.Addrs() {
		rec, _ := snap.Get(a)
		status, _ := describe(rec)
		if err := enc.Encode(stateListEntry{Address: a.String(), Status: status, Record: rec}); err != nil {
			return fmt.Errorf("write the state list: %w", err)
		}
	}
	return nil
}

// describe gives a record's status and a one-line summary for state list.
func describe(rec state.Record) (string, string) {
	ago := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return time.Since(t).Round(time.Second).String() + " ago"
	}
	switch r := rec.(type) {
	case *state.NodeRecord:
		where := "this machine"
		if r.Connection == config.ConnectionSSH {
			where = r.Host
		}
		ver := r.HiveVersion
		if ver == "" {
			ver = "unknown"
		}
		return string(r.Status), fmt.Sprintf("%s, last contact %s, install_dir %s, hive %s, cpu_variant %s", where, ago(r.LastContact), r.InstallDir, ver, dash(r.CPUVariant))
	case *state.ModelRecord:
		sum := r.ActualSHA256
		if len(sum) > 12 {
			sum = sum[:12] + "…"
		}
		return string(r.Status), fmt.Sprintf("%s, %d bytes, sha256 %s", r.Source, r.Size, dash(sum))
	case *state.WorkerRecord:
		return string(r.State), fmt.Sprintf("%s, %s, %s, ctx_size %d, %d slots, restarts %d", r.Model, dash(r.URL), describeRuntime(r), r.CtxSize, r.Slots, r.Restarts)
	}
	return "", ""
}

// describeRuntime is what worker r computes with: "backend cpu, cpu_variant
// icelake", or for a GPU "backend cuda, device 0, offloaded_layers 23,
// cpu_variant icelake".
func describeRuntime(r *state.WorkerRecord) string {
	parts := []string{"backend " + dash(r.Backend)}
	if r.Backend != "" && r.Backend != spec.BackendCPU {
		parts = append(parts, fmt.Sprintf("device %d", r.Device), fmt.Sprintf("offloaded_layers %d", r.OffloadedLayers))
	}
	return strings.Join(append(parts, "cpu_variant "+dash(r.CPUVariant)), ", ")
}

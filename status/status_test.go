package status

import (
	"strings"
	"testing"
	"time"
)

func TestCounter(t *testing.T) {
	tests := []struct {
		name, text string
		want       float64
		err        string
	}{
		{"plain", "# HELP x\n# TYPE rbee_worker_generated_tokens_total counter\nrbee_worker_generated_tokens_total 42\n", 42, ""},
		{"exponent", "rbee_worker_generated_tokens_total 1.5e+06\n", 1.5e6, ""},
		{"a longer name is another series", "rbee_worker_generated_tokens_total_x 1\nrbee_worker_generated_tokens_total 7\n", 7, ""},
		{"missing", "rbee_worker_prompt_tokens_total 3\n", 0, "no rbee_worker_generated_tokens_total series"},
		{"garbage value", "rbee_worker_generated_tokens_total many\n", 0, "bad value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := counter(strings.NewReader(tt.text), GeneratedMetric)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v %v, want %v", got, err, tt.want)
			}
		})
	}
}

func TestRates(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type obs struct {
		at    time.Duration
		count float64
	}
	tests := []struct {
		name   string
		obs    []obs
		want   float64 // rate after the last observation; -1 = none
		window string
	}{
		{"one sample has no rate", []obs{{0, 10}}, -1, ""},
		{"two samples", []obs{{0, 10}, {2 * time.Second, 30}}, 10, "2s"},
		{"older samples leave the minute", []obs{{0, 0}, {30 * time.Second, 600}, {61 * time.Second, 610}, {92 * time.Second, 920}}, 320.0 / 62, "1m2s"},
		{"a restarted worker starts over", []obs{{0, 500}, {2 * time.Second, 520}, {4 * time.Second, 4}}, -1, ""},
		{"after a restart the new history counts", []obs{{0, 500}, {2 * time.Second, 3}, {4 * time.Second, 13}}, 5, "2s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRates()
			var w Worker
			for _, o := range tt.obs {
				c := o.count
				w = Worker{ID: "chat-0", URL: "http://127.0.0.1:8001", Generated: &c}
				r.Apply(t0.Add(o.at), &w)
			}
			if tt.want < 0 {
				if w.TokensPerSecond != nil {
					t.Fatalf("rate %v, want none", *w.TokensPerSecond)
				}
				return
			}
			if w.TokensPerSecond == nil {
				t.Fatalf("no rate, want %v", tt.want)
			}
			if d := *w.TokensPerSecond - tt.want; d > 1e-9 || d < -1e-9 {
				t.Errorf("rate %v, want %v", *w.TokensPerSecond, tt.want)
			}
			if w.RateWindow != tt.window {
				t.Errorf("window %q, want %q", w.RateWindow, tt.window)
			}
		})
	}
}

func TestWriteTable(t *testing.T) {
	rate := 12.34
	rep := Report{Nodes: []Node{
		{Name: "gpu1", HiveURL: "http://10.0.0.5:9200", Error: "dial tcp 10.0.0.5:9200: connect: connection refused",
			Workers: []Worker{{Address: "worker.chat[gpu1/0]", Model: "tiny", Backend: "cuda", State: StateUnknown, SlotsTotal: 4}}},
		{Name: "local", Reachable: true, Version: "0.2.0", Workers: []Worker{
			{Address: "worker.chat[local/0]", Model: "tiny", Backend: "cpu", State: "busy", SlotsBusy: 1, SlotsTotal: 2, TokensPerSecond: &rate, Restarts: 3},
		}},
		{Name: "spare", Reachable: true, Version: "0.2.0"},
	}}
	var b strings.Builder
	if err := WriteTable(&b, rep, false); err != nil {
		t.Fatal(err)
	}
	want := `NODE   HIVE         WORKER                STATE    MODEL  BACKEND  SLOTS  TOK/S  RESTARTS
gpu1   unreachable  worker.chat[gpu1/0]   unknown  tiny   cuda     -/4    -      0
local  v0.2.0       worker.chat[local/0]  busy     tiny   cpu      1/2    12.3   3
spare  v0.2.0       -
node.gpu1: the hive at http://10.0.0.5:9200 did not answer: dial tcp 10.0.0.5:9200: connect: connection refused
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	_ = WriteTable(&b, rep, true)
	if !strings.Contains(b.String(), "\x1b[31munknown\x1b[0m  ") || !strings.Contains(b.String(), "\x1b[32mbusy\x1b[0m     ") {
		t.Errorf("colours pad after the escape codes:\n%q", b.String())
	}
}

func TestAddrLess(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"worker.chat[n/2]", "worker.chat[n/10]", true},
		{"worker.chat[n/10]", "worker.chat[n/2]", false},
		{"worker.chat[n/0]", "infer-1a2b", true},
		{"infer-1a2b", "worker.chat[n/0]", false},
		{"infer-1", "infer-2", true},
	}
	for _, tt := range tests {
		if got := addrLess(tt.a, tt.b); got != tt.want {
			t.Errorf("addrLess(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

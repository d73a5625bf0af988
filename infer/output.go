package infer

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rbee-dev/rbee/agents/worker/workerapi"
)

// Output renders a run for `rbee infer`: as text, tokens go to Stdout as
// they arrive and the statistics to Stderr; as JSON, one event per line on
// Stdout (start, token…, end or error).
type Output struct {
	Stdout, Stderr io.Writer
	JSON           bool

	lastByte byte
	wrote    bool
}

// The lines of `rbee infer --json`, one JSON object each, in this order:
// one StartEvent, a TokenEvent per token, then an EndEvent or an ErrorEvent.
type (
	// StartEvent says which worker took the request.
	StartEvent struct {
		Type      string `json:"type"` // "start"
		Worker    string `json:"worker"`
		URL       string `json:"url"`
		JobID     string `json:"job_id"`
		Ephemeral bool   `json:"ephemeral,omitempty"`
	}
	// TokenEvent is one generated token.
	TokenEvent struct {
		Type string `json:"type"` // "token"
		T    string `json:"t"`
		I    int    `json:"i"`
	}
	// EndEvent closes a finished run with its statistics.
	EndEvent struct {
		Type            string  `json:"type"` // "end"
		Worker          string  `json:"worker"`
		URL             string  `json:"url"`
		JobID           string  `json:"job_id"`
		Ephemeral       bool    `json:"ephemeral,omitempty"`
		TokensOut       int     `json:"tokens_out"`
		PromptTokens    int     `json:"prompt_tokens"`
		PromptTimeMS    int64   `json:"prompt_time_ms"`
		DecodeTimeMS    int64   `json:"decode_time_ms"`
		PromptTokPerSec float64 `json:"prompt_tokens_per_second"`
		DecodeTokPerSec float64 `json:"decode_tokens_per_second"`
		FirstTokenMS    float64 `json:"first_token_ms"` // from the start of the request, routing included
		TotalMS         float64 `json:"total_ms"`
		StopReason      string  `json:"stop_reason"`
		Attempts        int     `json:"attempts"`
	}
	// ErrorEvent closes a failed run.
	ErrorEvent struct {
		Type     string `json:"type"` // "error"
		Message  string `json:"message"`
		ExitCode int    `json:"exit_code"`
	}
)

// Sink returns the Sink that renders the stream.
func (o *Output) Sink() Sink {
	return func(w Worker, ev workerapi.Event) error {
		switch ev.Type {
		case workerapi.EventStarted:
			if o.JSON {
				return o.emit(StartEvent{Type: "start", Worker: w.Name(), URL: w.URL, JobID: ev.JobID, Ephemeral: w.Ephemeral})
			}
		case workerapi.EventToken:
			if o.JSON {
				return o.emit(TokenEvent{Type: "token", T: ev.T, I: ev.I})
			}
			if ev.T == "" {
				return nil
			}
			if _, err := io.WriteString(o.Stdout, ev.T); err != nil {
				return fmt.Errorf("writing the output: %w", err)
			}
			if f, ok := o.Stdout.(interface{ Flush() error }); ok {
				_ = f.Flush()
			}
			o.wrote, o.lastByte = true, ev.T[len(ev.T)-1]
		}
		return nil
	}
}

// Done reports a finished run: the end event (JSON) or a newline on Stdout
// and the statistics on Stderr (text).
func (o *Output) Done(out Outcome) error {
	s := Stats(out)
	if o.JSON {
		return o.emit(s)
	}
	if o.wrote && o.lastByte != '\n' {
		fmt.Fprintln(o.Stdout)
	}
	fmt.Fprintln(o.Stderr, StatsLine(out))
	return nil
}

// Error reports a failed run as a JSON error event (the text form is left
// to the caller, which prints errors on Stderr).
func (o *Output) Error(err error, code int) {
	if o.JSON {
		_ = o.emit(ErrorEvent{Type: "error", Message: err.Error(), ExitCode: code})
	} else if o.wrote && o.lastByte != '\n' {
		fmt.Fprintln(o.Stdout)
	}
}

func (o *Output) emit(ev any) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = o.Stdout.Write(append(b, '\n'))
	return err
}

// Stats are the figures of a finished run (the "end" JSON event).
func Stats(out Outcome) EndEvent {
	e := out.End
	return EndEvent{
		Type: "end", Worker: out.Worker.Name(), URL: out.Worker.URL, JobID: out.JobID, Ephemeral: out.Worker.Ephemeral,
		TokensOut: e.TokensOut, PromptTokens: e.PromptTokens, PromptTimeMS: e.PromptTimeMS, DecodeTimeMS: e.DecodeTimeMS,
		PromptTokPerSec: rate(e.PromptTokens, e.PromptTimeMS), DecodeTokPerSec: decodeRate(e),
		FirstTokenMS: ms(out.FirstToken), TotalMS: ms(out.Total), StopReason: e.StopReason, Attempts: out.Attempts,
	}
}

// StatsLine is the one-line summary printed on stderr after the tokens.
func StatsLine(out Outcome) string {
	s := Stats(out)
	var b strings.Builder
	prompt := tokPerSec(s.PromptTokPerSec)
	if s.PromptTokens > 0 && s.PromptTimeMS == 0 {
		prompt = "under 1 ms" // the worker reports whole milliseconds
	}
	fmt.Fprintf(&b, "%s at %s: prompt %d tokens (%s), decode %d tokens (%s), first token after %s, total %s",
		s.Worker, s.URL, s.PromptTokens, prompt, s.TokensOut, tokPerSec(s.DecodeTokPerSec),
		round(out.FirstToken), round(out.Total))
	if s.StopReason != "" {
		fmt.Fprintf(&b, ", stop: %s", s.StopReason)
	}
	if out.Attempts > 1 {
		fmt.Fprintf(&b, " (%d attempts)", out.Attempts)
	}
	return b.String()
}

func rate(n int, msec int64) float64 {
	if n == 0 || msec <= 0 {
		return 0
	}
	return float64(n) / (float64(msec) / 1000)
}

func tokPerSec(v float64) string {
	if v == 0 {
		return "- tok/s"
	}
	return fmt.Sprintf("%.1f tok/s", v)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d
}

func decodeRate(e workerapi.Event) float64 {
	if e.TokensPerSecond > 0 {
		return e.TokensPerSecond
	}
	return rate(e.TokensOut, e.DecodeTimeMS)
}

// Package canary measures one worker with a short fixed request (greedy, 16
// tokens, the whole prompt evaluated) on a free slot: its decode rate and
// time to first token, checked against the pool's SLO, and a fingerprint of
// its output, which on the same model file and engine build stays the same.
package canary

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/api"
)

// The canary request.
const (
	Prompt    = "Once upon a time"
	Tokens    = 16
	JobPrefix = "canary-" // job ids of canary requests, as worker logs show them
)

// ErrNoSlot is returned when the worker has no free slot (or is not ready):
// the canary does not wait for one, so it never delays a user's request.
var ErrNoSlot = errors.New("no free slot: the canary was skipped")

// Measure is what one canary request measured.
type Measure struct {
	DecodeTPS   float64       // tokens per second after the first
	TTFT        time.Duration // from sending the request to the first token, as a client sees it
	Tokens      int
	Fingerprint string // of the output and the chat template
	Engine      string // backend/cpu variant the worker reports
}

// Request is the canary's inference request: greedy, a fixed seed, Tokens
// tokens past any end of text, and no cached prefix (a real prefill).
func Request(jobID string) workerapi.InferenceRequest {
	n, temp, seed, noCache := Tokens, 0.0, int64(1), false
	return workerapi.InferenceRequest{Prompt: Prompt, MaxTokens: &n, Temperature: &temp, Seed: &seed,
		IgnoreEOS: true, CachePrompt: &noCache, JobID: jobID}
}

// Run asks the worker for a free slot and, when it has one, runs the canary
// request on it. It returns ErrNoSlot without running anything otherwise.
func Run(ctx context.Context, cl *workerapi.Client) (Measure, error) {
	rd, err := cl.Ready(ctx)
	if err != nil {
		return Measure{}, fmt.Errorf("asking the worker for a free slot: %w", err)
	}
	if !rd.Ready || rd.SlotsFree < 1 {
		return Measure{}, ErrNoSlot
	}
	start := time.Now()
	var ttft time.Duration
	res, err := cl.Infer(ctx, Request(JobPrefix+strconv.FormatInt(start.UnixNano(), 36)), func(ev workerapi.Event) error {
		if ev.Type == workerapi.EventToken && ttft == 0 {
			ttft = time.Since(start)
		}
		return nil
	})
	if api.HasCode(err, workerapi.CodeBusy) {
		return Measure{}, ErrNoSlot // a user's request took the slot first
	}
	if err != nil {
		return Measure{}, fmt.Errorf("canary request: %w", err)
	}
	return Measure{DecodeTPS: DecodeRate(res.End), TTFT: ttft, Tokens: res.End.TokensOut,
		Fingerprint: Fingerprint(res.Text, rd.ChatTemplate), Engine: rd.Backend + "/" + rd.CPUVariant}, nil
}

// DecodeRate is the tokens per second of the end event: the worker's own
// figure, else tokens after the first over the decode time.
func DecodeRate(end workerapi.Event) float64 {
	if end.TokensPerSecond > 0 {
		return end.TokensPerSecond
	}
	if end.TokensOut < 2 || end.DecodeTimeMS <= 0 {
		return 0
	}
	return float64(end.TokensOut-1) * 1000 / float64(end.DecodeTimeMS)
}

// Fingerprint digests a greedy output and the chat template the worker
// uses: 16 hex digits.
func Fingerprint(text, chatTemplate string) string {
	sum := sha256.Sum256([]byte(text + "\x00" + chatTemplate))
	return hex.EncodeToString(sum[:8])
}

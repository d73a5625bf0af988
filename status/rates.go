package status

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
	"github.com/rbee-dev/rbee/api"
)

// GeneratedMetric is the worker's counter of generated tokens (GET /metrics).
const GeneratedMetric = "rbee_worker_generated_tokens_total"

// RateWindow is how far back a rate looks.
const RateWindow = time.Minute

// generatedTokens reads GeneratedMetric from a worker's /metrics.
func generatedTokens(ctx context.Context, hc *http.Client, baseURL, token string) (float64, error) {
	body, err := scrape(ctx, hc, baseURL, token)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	return counter(io.LimitReader(body, 4<<20), GeneratedMetric)
}

// scrape GETs baseURL/metrics with the bearer token (if any) and returns
// the body of a 200; the caller closes it.
func scrape(ctx context.Context, hc *http.Client, baseURL, token string) (io.ReadCloser, error) {
	req, err := api.NewRequest(ctx, http.MethodGet, strings.TrimRight(baseURL, "/")+"/metrics", token, nil)
	if err != nil {
		return nil, err
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s/metrics: %s", baseURL, resp.Status)
	}
	return resp.Body, nil
}

// counter returns the value of an unlabelled series in the Prometheus text format.
func counter(r io.Reader, name string) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
			continue
		}
		fields := strings.Fields(rest)
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: bad value %q", name, fields[0])
		}
		return v, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s series", name)
}

// Rates keeps each worker's recent counts, so that successive reports (rbee
// status --watch) can say how fast each worker generated over the last
// minute. It is safe for concurrent use.
type Rates struct {
	mu      sync.Mutex
	samples map[string][]sample // by worker URL+ID
}

type sample struct {
	t     time.Time
	count float64
}

// NewRates returns an empty history.
func NewRates() *Rates { return &Rates{samples: map[string][]sample{}} }

// Apply records w's count at t and sets w's rate from the samples of the
// last RateWindow. A count lower than the last one (the worker restarted)
// starts the history again.
func (r *Rates) Apply(t time.Time, w *Worker) {
	if w.Generated == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	key := w.ID + " " + w.URL
	s := r.samples[key]
	if n := len(s); n > 0 && *w.Generated < s[n-1].count {
		s = nil
	}
	s = append(s, sample{t: t, count: *w.Generated})
	// Keep the newest sample at least RateWindow old as the base.
	for len(s) > 2 && t.Sub(s[1].t) >= RateWindow {
		s = s[1:]
	}
	r.samples[key] = s
	if len(s) < 2 {
		return
	}
	span := t.Sub(s[0].t)
	if span <= 0 {
		return
	}
	v := (s[len(s)-1].count - s[0].count) / span.Seconds()
	w.TokensPerSecond = &v
	w.RateWindow = span.Round(time.Second).String()
}

// rateNote says why rates are missing from a report, or "".
func rateNote(rep Report, r *Rates) string {
	have, missing := false, false
	for _, n := range rep.Nodes {
		for _, w := range n.Workers {
			switch {
			case w.TokensPerSecond != nil:
				have = true
			case hiveapi.Ready(w.State):
				missing = true
			}
		}
	}
	switch {
	case !missing:
		return ""
	case r == nil:
		return "tokens/s needs counts over time (the workers' " + GeneratedMetric + "): run rbee status --watch"
	case !have:
		return "tokens/s appears from the second sample on (the workers' " + GeneratedMetric + ")"
	}
	return "tokens/s is missing for workers whose /metrics did not answer"
}

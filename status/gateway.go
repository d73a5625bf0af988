package status

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rbee-dev/rbee/api"
)

// QueueMetric is the gateway's gauge of requests waiting for a slot, by model.
const QueueMetric = "rbee_gateway_queue_depth"

// Gateway is the fleet's gateway as its /metrics reports it.
type Gateway struct {
	URL       string `json:"url"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// QueueDepth is how many requests wait for a slot, by pool or model name.
	QueueDepth map[string]float64 `json:"queue_depth"`
}

// gateway asks the gateway at url (with the API key, if any) for its queues.
func (g *Gatherer) gateway(ctx context.Context, url, key string) *Gateway {
	gw := &Gateway{URL: url, QueueDepth: map[string]float64{}}
	ctx, cancel := context.WithTimeout(ctx, g.timeout())
	defer cancel()
	req, err := api.NewRequest(ctx, http.MethodGet, strings.TrimRight(url, "/")+"/metrics", key, nil)
	if err != nil {
		gw.Error = err.Error()
		return gw
	}
	hc := g.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		gw.Error = err.Error()
		return gw
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		gw.Error = fmt.Sprintf("GET %s/metrics: %s", url, resp.Status)
		return gw
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		gw.Error = "its /metrics does not parse: " + err.Error()
		return gw
	}
	gw.Reachable = true
	for _, m := range mfs[QueueMetric].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "model" {
				gw.QueueDepth[l.GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	return gw
}

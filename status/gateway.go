package status

import (
	"context"
	"io"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
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
	body, err := scrape(ctx, g.HTTP, url, key)
	if err != nil {
		gw.Error = err.Error()
		return gw
	}
	defer body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(io.LimitReader(body, 16<<20))
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

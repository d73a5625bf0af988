package gateway

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Request outcomes, the "outcome" label of rbee_gateway_requests_total.
const (
	outcomeOK           = "ok"            // the worker answered 2xx and the answer reached the client
	outcomeRejected     = "rejected"      // the worker answered 4xx (bad request), passed through
	outcomeWorkerError  = "worker_error"  // the worker answered 5xx other than busy, passed through
	outcomeQueueFull    = "queue_full"    // 503 QUEUE_FULL
	outcomeQueueTimeout = "queue_timeout" // 504 QUEUE_TIMEOUT
	outcomeNoWorker     = "no_worker"     // every worker refused
	outcomeWorkerDied   = "worker_died"   // the worker stopped mid-stream
	outcomeCancelled    = "cancelled"     // the client went away
	outcomeUnknown      = "unknown_model" // the name is neither a pool nor a model
)

// unknownLabel is the model label of requests for names that do not exist
// (one label value, so a client cannot grow the series without bound).
const unknownLabel = "(unknown)"

// metrics are the gateway's Prometheus series, in their own registry.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	queueWait *prometheus.HistogramVec
	ttft      *prometheus.HistogramVec
	tokens    *prometheus.CounterVec
	retries   *prometheus.CounterVec
}

func newMetrics(f *fleet) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rbee_gateway_requests_total", Help: "Requests by model (pool or model name) and outcome.",
		}, []string{"model", "outcome"}),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rbee_gateway_queue_wait_seconds", Help: "Time requests waited in the queue for a slot.",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"model"}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rbee_gateway_time_to_first_token_seconds", Help: "Time from the request to its first streamed token, queue included.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"model"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rbee_gateway_tokens_out_total", Help: "Tokens generated for clients of the gateway.",
		}, []string{"model"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rbee_gateway_retries_total", Help: "Requests sent again to another worker after one refused before the first byte, by reason.",
		}, []string{"model", "reason"}),
	}
	m.reg.MustRegister(m.requests, m.queueWait, m.ttft, m.tokens, m.retries,
		&fleetCollector{f: f}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// fleetCollector reports the queue depth and the workers by state at scrape time.
type fleetCollector struct{ f *fleet }

var (
	descQueue = prometheus.NewDesc("rbee_gateway_queue_depth", "Requests waiting for a slot, by model (pool or model name).", []string{"model"}, nil)
	descWork  = prometheus.NewDesc("rbee_gateway_workers", "Workers the gateway knows, by state (idle, busy, loading, draining, down, ...).", []string{"state"}, nil)
	descLoad  = prometheus.NewDesc("rbee_gateway_inflight_requests", "Requests the gateway has running on workers, by pool.", []string{"pool"}, nil)
)

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descQueue
	ch <- descWork
	ch <- descLoad
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	for name, q := range c.f.queues {
		ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(len(q.waiters)), name)
	}
	states := map[string]int{}
	inflight := map[string]int{}
	for _, w := range c.f.workers {
		s := w.state
		if w.refused && w.state != stateDraining {
			s = stateDown
		}
		states[s]++
		inflight[w.pool] += w.inflight
	}
	for s, n := range states {
		ch <- prometheus.MustNewConstMetric(descWork, prometheus.GaugeValue, float64(n), s)
	}
	for p, n := range inflight {
		ch <- prometheus.MustNewConstMetric(descLoad, prometheus.GaugeValue, float64(n), p)
	}
}

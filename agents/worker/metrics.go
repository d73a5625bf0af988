package worker

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rbee-dev/rbee/engine"
)

// metrics are the worker's Prometheus series, on a private registry.
type metrics struct {
	reg          *prometheus.Registry
	requests     *prometheus.CounterVec // by endpoint and outcome (stop reason or error code)
	promptTokens prometheus.Counter
	genTokens    prometheus.Counter
	decodeSecs   prometheus.Counter
	promptSecs   prometheus.Counter
	lastRate     prometheus.Gauge
	cachedTokens prometheus.Counter
	ttft         *prometheus.HistogramVec // time to first token, by endpoint
	duration     *prometheus.HistogramVec // request duration, by endpoint
}

// latencyBuckets span a tiny model's milliseconds to a long generation's minutes.
var latencyBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rbee_worker_requests_total",
			Help: "Inference requests by endpoint and outcome (a stop reason such as max_tokens, or an error code such as ALL_SLOTS_BUSY).",
		}, []string{"endpoint", "outcome"}),
		promptTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rbee_worker_prompt_tokens_total", Help: "Prompt tokens processed.",
		}),
		genTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rbee_worker_generated_tokens_total", Help: "Tokens generated.",
		}),
		decodeSecs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rbee_worker_decode_seconds_total", Help: "Time sequences spent generating after their first token, summed over sequences.",
		}),
		promptSecs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rbee_worker_prompt_seconds_total", Help: "Time from admission to first token, summed over requests.",
		}),
		lastRate: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rbee_worker_tokens_per_second", Help: "Decode rate of the last finished request, in tokens per second.",
		}),
		cachedTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rbee_worker_prompt_tokens_cached_total", Help: "Prompt tokens reused from a slot's cache instead of being evaluated again.",
		}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rbee_worker_time_to_first_token_seconds", Help: "Time from admission to the first generated token.", Buckets: latencyBuckets,
		}, []string{"endpoint"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rbee_worker_request_duration_seconds", Help: "Time from admission to the last generated token.", Buckets: latencyBuckets,
		}, []string{"endpoint"}),
	}
	busySlots := func() float64 {
		r := s.readiness()
		if !r.Ready {
			return 0
		}
		return float64(r.SlotsTotal - r.SlotsFree)
	}
	m.reg.MustRegister(m.requests, m.promptTokens, m.genTokens, m.decodeSecs, m.promptSecs, m.lastRate, m.cachedTokens, m.ttft, m.duration,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rbee_worker_slots", Help: "Slots (parallel sequences) of the worker."},
			func() float64 { return float64(s.cfg.Slots) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rbee_worker_slots_busy", Help: "Slots holding a sequence; 0 while loading."}, busySlots),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rbee_worker_ready", Help: "1 once the model is loaded and the worker accepts requests."},
			func() float64 {
				if s.readiness().Ready {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rbee_worker_load_progress", Help: "Model load progress, 0 to 1."}, s.loadProgress),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rbee_worker_in_flight", Help: "Requests being served."},
			func() float64 { return float64(s.readiness().InFlight) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rbee_worker_draining", Help: "1 once POST /v1/admin/drain arrived: new requests are refused."},
			func() float64 {
				if s.isDraining() {
					return 1
				}
				return 0
			}),
	)
	return m
}

// observe records one finished sequence that ran for took.
func (m *metrics) observe(endpoint string, st engine.Stats, took time.Duration) {
	m.requests.WithLabelValues(endpoint, string(st.StopReason)).Inc()
	m.cachedTokens.Add(float64(st.CachedTokens))
	if st.Tokens > 0 {
		m.ttft.WithLabelValues(endpoint).Observe(st.PromptTime.Seconds())
	}
	m.duration.WithLabelValues(endpoint).Observe(took.Seconds())
	m.promptTokens.Add(float64(st.PromptTokens))
	m.genTokens.Add(float64(st.Tokens))
	m.decodeSecs.Add(st.DecodeTime.Seconds())
	m.promptSecs.Add(st.PromptTime.Seconds())
	if r := st.TokensPerSecond(); r > 0 {
		m.lastRate.Set(r)
	}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

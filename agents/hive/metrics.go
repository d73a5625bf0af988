package hive

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rbee-dev/rbee/agents/hive/hiveapi"
)

// workerStates are every state a worker can report, so each has a series
// (0 when no worker is in it).
var workerStates = []string{
	hiveapi.StateStarting, hiveapi.StateLoading, hiveapi.StateIdle, hiveapi.StateBusy, hiveapi.StateDraining,
	hiveapi.StateRestarting, hiveapi.StateFailed, hiveapi.StateStopped, hiveapi.StateStopping,
}

// metrics are the hive's Prometheus series (rbee_hive_*), on a private registry.
type metrics struct {
	reg        *prometheus.Registry
	restarts   *prometheus.CounterVec // by pool
	failures   *prometheus.CounterVec // by pool and reason (crash_loop, load_failed)
	preflights *prometheus.CounterVec // refused spawns by error code
}

func newMetrics() *metrics {
	return &metrics{
		reg: prometheus.NewRegistry(),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rbee_hive_worker_restarts_total", Help: "Workers restarted after a crash, by pool.",
		}, []string{"pool"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rbee_hive_worker_failures_total",
			Help: "Workers marked failed and no longer restarted, by pool and reason (crash_loop or load_failed).",
		}, []string{"pool", "reason"}),
		preflights: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rbee_hive_preflight_refusals_total", Help: "Worker spawns refused by preflight, by error code.",
		}, []string{"code"}),
	}
}

// register adds the counters and the collectors that read the hive's live
// state at scrape time.
func (m *metrics) register(h *Hive) {
	dl := h.store.Downloads()
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(m.restarts, m.failures, m.preflights,
		counter("rbee_hive_download_bytes_total", "Model bytes downloaded.", func() float64 { return float64(dl.Bytes.Load()) }),
		counter("rbee_hive_download_failures_total", "Model downloads that gave up (cancellations aside).", func() float64 { return float64(dl.Failures.Load()) }),
		counter("rbee_hive_download_resumes_total", "Download attempts that resumed a partial file with a Range request.", func() float64 { return float64(dl.Resumes.Load()) }),
		&liveCollector{h: h},
	)
}

// handler serves the registry in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

var (
	workersDesc = prometheus.NewDesc("rbee_hive_workers", "Workers the hive is meant to run, by state.", []string{"state"}, nil)
	ramDesc     = prometheus.NewDesc("rbee_hive_ram_available_bytes", "RAM available for new workers (MemAvailable).", nil, nil)
	diskDesc    = prometheus.NewDesc("rbee_hive_disk_free_bytes", "Free disk space of the data dir.", nil, nil)
	vramDesc    = prometheus.NewDesc("rbee_hive_vram_free_bytes", "Free memory of each GPU, where the driver reports it.", []string{"backend", "device"}, nil)
)

// liveCollector reports workers by state and the node's free resources as
// they are at scrape time.
type liveCollector struct{ h *Hive }

func (c *liveCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- workersDesc
	ch <- ramDesc
	ch <- diskDesc
	ch <- vramDesc
}

func (c *liveCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{}
	c.h.mu.Lock()
	for _, w := range c.h.workers {
		counts[w.status().State]++
	}
	c.h.mu.Unlock()
	for _, st := range workerStates {
		ch <- prometheus.MustNewConstMetric(workersDesc, prometheus.GaugeValue, float64(counts[st]), st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res := c.h.probe.Resources(ctx)
	ch <- prometheus.MustNewConstMetric(ramDesc, prometheus.GaugeValue, float64(res.RAMAvailable))
	ch <- prometheus.MustNewConstMetric(diskDesc, prometheus.GaugeValue, float64(res.DiskFree))
	for _, g := range res.GPUs {
		if g.VRAMTotal > 0 {
			ch <- prometheus.MustNewConstMetric(vramDesc, prometheus.GaugeValue, float64(g.VRAMFree), g.Backend, strconv.Itoa(g.Index))
		}
	}
}

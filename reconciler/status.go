package reconciler

import (
	"bytes"
	"net/http"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rbee-dev/rbee/api"
	"github.com/rbee-dev/rbee/applier"
	"github.com/rbee-dev/rbee/config"
	"github.com/rbee-dev/rbee/planner"
)

// Phases of the daemon, as shown in Status.Phase.
const (
	PhaseStarting    = "starting"
	PhaseIdle        = "idle"
	PhasePlanning    = "planning"
	PhaseWaitingLock = "waiting_for_lock"
	PhaseApplying    = "applying"
	PhaseStopping    = "stopping"
)

// Status is what GET /v1/status returns: what the daemon runs, what it last
// planned and applied, the drift it found and the last problem.
type Status struct {
	Mode          string        `json:"mode"`  // "apply" or "plan-only"
	Phase         string        `json:"phase"` // see the Phase constants
	PhaseDetail   string        `json:"phase_detail,omitempty"`
	Config        ConfigStatus  `json:"config"`
	LastPlan      *PlanSummary  `json:"last_plan"`
	LastApply     *ApplySummary `json:"last_apply"`
	Drift         []DriftItem   `json:"drift"`              // found by the last refresh of the hives
	DriftAt       *time.Time    `json:"drift_at,omitempty"` // when that refresh ran
	LastError     *ErrorStatus  `json:"last_error"`
	NextCheck     *time.Time    `json:"next_check,omitempty"`
	Interval      string        `json:"interval"`
	Reconciles    int           `json:"reconciles"`
	StartedAt     time.Time     `json:"started_at"`
	StateDir      string        `json:"state_dir"`
	LockHolder    string        `json:"lock_holder,omitempty"` // set while waiting for someone else's lock
	LastSuccess   *time.Time    `json:"last_success,omitempty"`
	StopRequested bool          `json:"stop_requested,omitempty"`
}

// ConfigStatus describes the configuration in force and the file on disk.
type ConfigStatus struct {
	Path     string     `json:"path"`
	Hash     string     `json:"hash"`  // of the last valid configuration, the one in force
	Valid    bool       `json:"valid"` // whether the files on disk are valid right now
	LoadedAt *time.Time `json:"loaded_at,omitempty"`
}

// PlanSummary is the outcome of the last plan.
type PlanSummary struct {
	Trigger     string     `json:"trigger"`            // start, file or timer
	EventAt     *time.Time `json:"event_at,omitempty"` // first file event of the burst (file trigger)
	StartedAt   time.Time  `json:"started_at"`
	FinishedAt  time.Time  `json:"finished_at"`
	ConfigHash  string     `json:"config_hash"`
	Refreshed   bool       `json:"refreshed"`
	Add         int        `json:"add"`
	Change      int        `json:"change"`
	Destroy     int        `json:"destroy"`
	Description string     `json:"description"`
	// Degraded: a worker is below its pool's slo or answers otherwise than
	// when it was created, drift that no change fixes (planner.Plan.Degraded).
	Degraded bool         `json:"degraded"`
	Changes  []ChangeItem `json:"changes"`
	Warnings []string     `json:"warnings"`
}

// ChangeItem is one planned change.
type ChangeItem struct {
	Addr    string   `json:"addr"`
	Action  string   `json:"action"`
	Symbol  string   `json:"symbol"`
	Reasons []string `json:"reasons"`
}

// DriftItem is one resource whose live state differs from the record.
type DriftItem struct {
	Addr    string   `json:"addr"`
	Reasons []string `json:"reasons"`
}

// ApplySummary is the outcome of the last apply.
type ApplySummary struct {
	Trigger     string     `json:"trigger"`
	EventAt     *time.Time `json:"event_at,omitempty"`
	StartedAt   time.Time  `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"` // nil while it runs
	Added       int        `json:"added"`
	Changed     int        `json:"changed"`
	Destroyed   int        `json:"destroyed"`
	Failed      []string   `json:"failed"`
	Interrupted bool       `json:"interrupted"`
	OK          bool       `json:"ok"`
	Error       string     `json:"error,omitempty"`
}

// ErrorStatus is the last problem: an invalid configuration (with its
// diagnostics), an unreachable state, a failed apply.
type ErrorStatus struct {
	At          time.Time    `json:"at"`
	Stage       string       `json:"stage"` // config, state, refresh, plan, lock, apply
	Message     string       `json:"message"`
	Diagnostics []Diagnostic `json:"diagnostics,omitempty"`
	Text        string       `json:"text,omitempty"` // the diagnostics as rbee validate prints them
}

// Diagnostic is one configuration problem with where it is.
type Diagnostic struct {
	Severity string `json:"severity"` // error or warning
	Summary  string `json:"summary"`
	Detail   string `json:"detail,omitempty"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
}

func diagnostics(d config.Diagnostics) ([]Diagnostic, string) {
	out := make([]Diagnostic, 0, len(d.Diags))
	for _, x := range d.Diags {
		item := Diagnostic{Severity: "error", Summary: x.Summary, Detail: x.Detail}
		if x.Severity == hcl.DiagWarning {
			item.Severity = "warning"
		}
		if x.Subject != nil {
			item.File, item.Line, item.Column = x.Subject.Filename, x.Subject.Start.Line, x.Subject.Start.Column
		}
		out = append(out, item)
	}
	var b bytes.Buffer
	_ = d.Write(&b, false)
	return out, b.String()
}

func planSummary(p *planner.Plan, t trigger, started time.Time) *PlanSummary {
	add, change, destroy := p.Counts()
	s := &PlanSummary{Trigger: t.kind, EventAt: t.eventAt(), StartedAt: started, FinishedAt: time.Now(), ConfigHash: p.ConfigHash,
		Refreshed: p.Refreshed, Add: add, Change: change, Destroy: destroy, Changes: []ChangeItem{}, Warnings: append([]string{}, p.Warnings...)}
	for _, c := range p.Changes {
		s.Changes = append(s.Changes, ChangeItem{Addr: c.Addr.String(), Action: c.Action.String(), Symbol: c.Symbol(), Reasons: nonNil(c.Reasons)})
	}
	if len(p.Changes) == 0 {
		s.Description = "No changes. The fleet matches the configuration."
	} else {
		s.Description = p.Summary()
	}
	if s.Degraded = p.Degraded(); s.Degraded {
		s.Description += " " + degradedNote
	}
	return s
}

// degradedNote ends the description of a degraded plan.
const degradedNote = "Degraded: a worker is below its slo or its outputs changed (drift, not a change)."

func driftItems(p *planner.Plan) []DriftItem {
	out := make([]DriftItem, 0, len(p.Drift))
	for _, c := range p.Drift {
		out = append(out, DriftItem{Addr: c.Addr.String(), Reasons: nonNil(c.Reasons)})
	}
	return out
}

func applySummary(res *applier.Result, err error, a *ApplySummary) {
	now := time.Now()
	a.FinishedAt = &now
	a.Failed = []string{}
	if err != nil {
		a.Error = err.Error()
		return
	}
	a.Added, a.Changed, a.Destroyed, a.Interrupted = res.Added, res.Changed, res.Destroyed, res.Interrupted
	for _, f := range res.Failures {
		a.Failed = append(a.Failed, f.Addr.String())
	}
	if e := res.Err(); e != nil {
		a.Error = e.Error()
		return
	}
	a.OK = true
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// metrics are the daemon's Prometheus series.
type metrics struct {
	reg           *prometheus.Registry
	reconciles    *prometheus.CounterVec
	failures      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	applies       *prometheus.CounterVec
	applyDuration prometheus.Histogram
	drift         prometheus.Gauge
	pending       prometheus.Gauge
	workers       *prometheus.GaugeVec
	configValid   prometheus.Gauge
	lastSuccess   prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rbee_watch_reconciles_total",
			Help: "Reconcile passes, by what triggered them (start, file, timer)."}, []string{"trigger"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rbee_watch_reconcile_failures_total",
			Help: "Reconcile passes that failed, by stage (config, state, refresh, plan, lock, apply)."}, []string{"stage"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rbee_watch_reconcile_duration_seconds",
			Help: "Time of a reconcile pass (load, refresh, plan and apply).", Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 12)}, []string{"trigger"}),
		applies: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rbee_watch_applies_total",
			Help: "Applies the daemon ran, by result (ok, failed, interrupted)."}, []string{"result"}),
		applyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rbee_watch_apply_duration_seconds",
			Help: "Time of an apply.", Buckets: prometheus.ExponentialBuckets(0.05, 2.5, 12)}),
		drift: prometheus.NewGauge(prometheus.GaugeOpts{Name: "rbee_watch_drift_resources",
			Help: "Resources whose live state differed from the record at the last refresh."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "rbee_watch_pending_changes",
			Help: "Changes in the last plan (0 when the fleet matches the configuration)."}),
		workers: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rbee_watch_workers",
			Help: "Workers by live state (from the last refresh of the hives)."}, []string{"state"}),
		configValid: prometheus.NewGauge(prometheus.GaugeOpts{Name: "rbee_watch_config_valid",
			Help: "1 when the configuration on disk is valid, 0 when the last good one keeps running."}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "rbee_watch_last_success_timestamp_seconds",
			Help: "Unix time of the last reconcile pass that ended with the fleet matching the configuration."}),
	}
	m.reg.MustRegister(m.reconciles, m.failures, m.duration, m.applies, m.applyDuration, m.drift, m.pending,
		m.workers, m.configValid, m.lastSuccess, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Gatherer is the daemon's Prometheus metrics.
func (r *Reconciler) Gatherer() prometheus.Gatherer { return r.metrics.reg }

// Handler serves GET /v1/status (JSON) and GET /metrics (Prometheus text).
func (r *Reconciler) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		api.WriteJSON(w, http.StatusOK, r.Status())
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		api.WriteError(w, api.Errorf(http.StatusNotFound, "NOT_FOUND", "no such endpoint %s %s: the daemon serves GET /v1/status and GET /metrics", req.Method, req.URL.Path))
	})
	return mux
}

package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"iproc/reporting/sources"
)

// metrics are the server's Prometheus metrics, on a registry of its own (no
// global state), served at /metrics. Their names are stable and listed in
// the README (Metrics); test/metrics_test.go checks what moves them.
type metrics struct {
	reg *prometheus.Registry

	connections     prometheus.Gauge
	sessions        prometheus.GaugeFunc
	requests        *prometheus.CounterVec
	framesIn        prometheus.Counter
	framesOut       prometheus.Counter
	eventsIn        *prometheus.CounterVec
	duplicates      prometheus.Counter
	eventsCommitted prometheus.Counter
	deliveries      prometheus.Counter
	slowConsumers   prometheus.Counter
	refusedConns    prometheus.Counter
	ingestLatency   *prometheus.HistogramVec
	deliveryLatency prometheus.Histogram
	ingestRejected  *prometheus.CounterVec
	commitToSocket  prometheus.Histogram
	replayToSocket  prometheus.Histogram
}

func newMetrics(sessions func() float64, sourceHealth func() []sources.Status) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	latencyBuckets := []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5}
	m.connections = prometheus.NewGauge(prometheus.GaugeOpts{Name: "iproc_connections", Help: "Open WebSocket connections."})
	m.sessions = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "iproc_sessions", Help: "Sessions, attached or resumable."}, sessions)
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iproc_requests_total", Help: "WebSocket requests by command and result."}, []string{"command", "result"})
	m.framesIn = prometheus.NewCounter(prometheus.CounterOpts{Name: "iproc_frames_received_total", Help: "WebSocket frames received."})
	m.framesOut = prometheus.NewCounter(prometheus.CounterOpts{Name: "iproc_frames_sent_total", Help: "WebSocket frames written (responses and events)."})
	m.eventsIn = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iproc_events_in_total", Help: "Notifications accepted and stored, by source."}, []string{"source"})
	m.duplicates = prometheus.NewCounter(prometheus.CounterOpts{Name: "iproc_duplicates_total", Help: "Notifications answered as duplicates (retried GUIDs)."})
	m.eventsCommitted = prometheus.NewCounter(prometheus.CounterOpts{Name: "iproc_events_committed_total", Help: "Events committed to the log (notifications, agent states, session changes)."})
	m.deliveries = prometheus.NewCounter(prometheus.CounterOpts{Name: "iproc_events_delivered_total", Help: "Event frames written to WebSocket connections (topics, session, team-status and service.info events)."})
	m.slowConsumers = prometheus.NewCounter(prometheus.CounterOpts{Name: "iproc_slow_consumer_disconnects_total", Help: "Connections closed with 1013 because their queue overflowed."})
	m.refusedConns = prometheus.NewCounter(prometheus.CounterOpts{Name: "iproc_connections_refused_total", Help: "WebSocket upgrades refused with 503 because --max-connections were open."})
	m.ingestLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "iproc_ingest_seconds", Help: "From request received to durable commit, by source.", Buckets: latencyBuckets}, []string{"source"})
	m.deliveryLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "iproc_delivery_seconds", Help: "From commit to the event being queued on every entitled connection.", Buckets: latencyBuckets})
	m.ingestRejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "iproc_ingest_rejected_total", Help: "Ingest requests refused, by HTTP status."}, []string{"status"})
	m.commitToSocket = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "iproc_commit_to_socket_seconds", Help: "From durable commit to the event frame written to a WebSocket, per live delivery (replays are in iproc_replay_to_socket_seconds).", Buckets: latencyBuckets})
	m.replayToSocket = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "iproc_replay_to_socket_seconds", Help: "From durable commit to the event frame written to a WebSocket, per event replayed by resumeSession (includes the client's time away).", Buckets: latencyBuckets})
	for _, c := range []prometheus.Collector{m.connections, m.sessions, m.requests, m.framesIn, m.framesOut,
		m.eventsIn, m.duplicates, m.eventsCommitted, m.deliveries, m.slowConsumers, m.refusedConns, m.ingestLatency,
		m.deliveryLatency, m.ingestRejected, m.commitToSocket, m.replayToSocket, newSourcesCollector(sourceHealth),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	return m
}

// sourcesCollector exports the source health of report.sources (SPEC §3.7),
// read at each scrape.
type sourcesCollector struct {
	report                            func() []sources.Status
	status, lastSeen, lastMinute      *prometheus.Desc
	listLength, nonEmpty, deadLetters *prometheus.Desc
}

func newSourcesCollector(report func() []sources.Status) *sourcesCollector {
	return &sourcesCollector{
		report:      report,
		status:      prometheus.NewDesc("iproc_source_status", "1 for the status each notification source has now (unknown, ok, quiet, down), 0 for the others.", []string{"source", "status"}, nil),
		lastSeen:    prometheus.NewDesc("iproc_source_last_seen_timestamp_seconds", "When the source's latest notification was stored (Unix time); absent before the first.", []string{"source"}, nil),
		lastMinute:  prometheus.NewDesc("iproc_source_notifications_last_minute", "Notifications of the last 60 s by source and outcome (accepted, rejected, duplicate).", []string{"source", "outcome"}, nil),
		listLength:  prometheus.NewDesc("iproc_dialer_list_length", "CDRs waiting in the dialer's Redis list.", nil, nil),
		nonEmpty:    prometheus.NewDesc("iproc_dialer_list_nonempty_seconds", "How long the dialer's Redis list has been non-empty without a break (0 when empty).", nil, nil),
		deadLetters: prometheus.NewDesc("iproc_dialer_dead_letters", "Elements of the dialer list's dead-letter list.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *sourcesCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.status, c.lastSeen, c.lastMinute, c.listLength, c.nonEmpty, c.deadLetters} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *sourcesCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, st := range c.report() {
		for _, s := range sources.Statuses() {
			v := 0.0
			if s == st.Status {
				v = 1
			}
			gauge(c.status, v, st.Source, s)
		}
		if t := st.LastSeenTime(); !t.IsZero() {
			gauge(c.lastSeen, float64(t.UnixMilli())/1000, st.Source)
		}
		gauge(c.lastMinute, float64(st.PerMinute), st.Source, "accepted")
		gauge(c.lastMinute, float64(st.RejectedPerMinute), st.Source, "rejected")
		gauge(c.lastMinute, float64(st.DuplicatesPerMinute), st.Source, "duplicate")
		if st.ListLength != nil {
			gauge(c.listLength, float64(*st.ListLength))
			gauge(c.nonEmpty, float64(*st.ListNonEmptySeconds))
			gauge(c.deadLetters, float64(*st.DeadLetters))
		}
	}
}

package metrics

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Snapshot is the proxy's state at one scrape, summed over its loops.
type Snapshot struct {
	Routes   []Route
	Backends []Backend

	ClientConns    int64  // open client connections
	Accepted       uint64 // client connections accepted
	ClientBytesIn  uint64
	ClientBytesOut uint64
	// Upstream bytes moved by loop-owned connections (owner = "loop").
	UpstreamBytesIn  uint64
	UpstreamBytesOut uint64
	// SplicedBytes of the upstream bytes in went to clients by splice(2).
	SplicedBytes uint64

	Refused        map[int]uint64 // Apex's refusals of bad requests, by status
	UpstreamErrors map[int]uint64 // Apex's answers for failed exchanges (502, 503, 504), by status
	Shed           uint64         // requests shed because a queue was full or they waited too long
	Retries        uint64         // requests sent again to another server after a failure

	ReloadsFailed, ReloadsSucceeded uint64
	AccessLogLines, AccessLogDrops  uint64
	AccessLogErrors                 uint64 // lines lost to write errors (disk full)
	Draining                        bool
}

// Route is one route's traffic. Requests are by status class: index 1..5
// for 1xx..5xx, 0 for requests that ended without a response (the client
// went away first).
type Route struct {
	Route, Backend string
	Requests       [6]uint64
	Duration       Histogram // first request byte to last response byte
	Upstream       Histogram // request sent upstream to response head (backend routes)
}

// Backend is one backend's upstream side.
type Backend struct {
	Name    string
	Queue   int // requests waiting for an upstream connection
	Servers []Server
}

// Server is one upstream server of a backend.
type Server struct {
	Addr        string
	Conns       int // open upstream connections
	Outstanding int // requests sent and not yet answered

	// Judged: the owner keeps health, a circuit breaker and a limit for
	// this server (owner = "loop"); the fields below are then valid.
	Judged  bool
	Up      bool // every loop sees it up
	Circuit int  // the most open circuit among the loops: 0 closed, 1 open, 2 half-open (health.State)
	Limit   int  // concurrency limit, summed over the loops
}

// Source gathers a Snapshot; it is called once per scrape from the admin
// endpoint's goroutine.
type Source interface {
	Snapshot() *Snapshot
}

var (
	dRequests     = prometheus.NewDesc("apex_requests_total", "Requests by route, backend and response status class (\"none\": the client left before a response).", []string{"route", "backend", "code"}, nil)
	dDuration     = prometheus.NewDesc("apex_request_duration_seconds", "Time from a request's first byte to its response's last byte.", []string{"route", "backend"}, nil)
	dUpstream     = prometheus.NewDesc("apex_upstream_response_seconds", "Time from sending a request upstream to receiving its response head.", []string{"backend"}, nil)
	dConns        = prometheus.NewDesc("apex_client_connections", "Open client connections.", nil, nil)
	dAccepted     = prometheus.NewDesc("apex_client_connections_accepted_total", "Client connections accepted.", nil, nil)
	dBytes        = prometheus.NewDesc("apex_bytes_total", "Bytes read (in) and written (out) on client sockets and on loop-owned upstream sockets.", []string{"side", "direction"}, nil)
	dSpliced      = prometheus.NewDesc("apex_spliced_bytes_total", "Response body bytes moved from upstream to client sockets by splice(2), without a copy through Apex (also counted in apex_bytes_total).", nil, nil)
	dUpConns      = prometheus.NewDesc("apex_upstream_connections", "Open upstream connections per server.", []string{"backend", "server"}, nil)
	dOutst        = prometheus.NewDesc("apex_upstream_outstanding_requests", "Requests sent to a server and not yet answered.", []string{"backend", "server"}, nil)
	dQueue        = prometheus.NewDesc("apex_backend_queue_depth", "Requests waiting for an upstream connection.", []string{"backend"}, nil)
	dRefused      = prometheus.NewDesc("apex_refused_requests_total", "Requests Apex refused itself, by status (400, 408, 413, 414, 431, 501, ...).", []string{"status"}, nil)
	dUpErr        = prometheus.NewDesc("apex_upstream_errors_total", "Requests answered by Apex because the exchange with the backend failed, by status (502, 503, 504).", []string{"status"}, nil)
	dShed         = prometheus.NewDesc("apex_shed_requests_total", "Requests shed (shed_status with Retry-After) because a queue was full or they waited past queue_timeout.", nil, nil)
	dRetries      = prometheus.NewDesc("apex_retries_total", "Requests sent again, to another server where one exists, after a failed try.", nil, nil)
	dUp           = prometheus.NewDesc("apex_upstream_up", "1 when the server is up on every loop (active checks and passive health).", []string{"backend", "server"}, nil)
	dCircuit      = prometheus.NewDesc("apex_upstream_circuit_state", "1 for the server's circuit state (the most open among the loops).", []string{"backend", "server", "state"}, nil)
	dLimit        = prometheus.NewDesc("apex_upstream_concurrency_limit", "The server's adaptive concurrency limit, summed over the loops.", []string{"backend", "server"}, nil)
	dReloads      = prometheus.NewDesc("apex_config_reloads_total", "Configuration reloads by result.", []string{"result"}, nil)
	dLogLines     = prometheus.NewDesc("apex_access_log_lines_total", "Access-log lines written.", nil, nil)
	dLogDrops     = prometheus.NewDesc("apex_access_log_dropped_total", "Access-log lines dropped because the log's buffer was full.", nil, nil)
	dLogErrs      = prometheus.NewDesc("apex_access_log_write_errors_total", "Access-log lines lost to write errors (a full disk, a closed pipe).", nil, nil)
	dDraining     = prometheus.NewDesc("apex_draining", "1 while Apex is shutting down.", nil, nil)
	classLabels   = [6]string{"none", "1xx", "2xx", "3xx", "4xx", "5xx"}
	circuitStates = [3]string{"closed", "open", "half_open"}
)

// Collector is a prometheus.Collector over a Source.
type Collector struct{ src Source }

// NewCollector returns a collector that reads src at every scrape.
func NewCollector(src Source) *Collector { return &Collector{src: src} }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dRequests, dDuration, dUpstream, dConns, dAccepted, dBytes, dSpliced, dUpConns, dOutst, dQueue, dRefused, dUpErr, dShed, dRetries, dUp, dCircuit, dLimit, dReloads, dLogLines, dLogDrops, dLogErrs, dDraining} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Snapshot()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	upstream := map[string]*Histogram{}
	var order []string
	for i := range s.Routes {
		r := &s.Routes[i]
		for class, n := range r.Requests {
			if n > 0 || class == 2 {
				counter(dRequests, n, r.Route, r.Backend, classLabels[class])
			}
		}
		ch <- constHistogram(dDuration, &r.Duration, r.Route, r.Backend)
		if r.Backend == "" {
			continue
		}
		h := upstream[r.Backend]
		if h == nil {
			h = &Histogram{}
			upstream[r.Backend] = h
			order = append(order, r.Backend)
		}
		h.Add(&r.Upstream)
	}
	for _, b := range order {
		ch <- constHistogram(dUpstream, upstream[b], b)
	}
	gauge(dConns, float64(s.ClientConns))
	counter(dAccepted, s.Accepted)
	counter(dBytes, s.ClientBytesIn, "client", "in")
	counter(dBytes, s.ClientBytesOut, "client", "out")
	counter(dBytes, s.UpstreamBytesIn, "upstream", "in")
	counter(dBytes, s.UpstreamBytesOut, "upstream", "out")
	counter(dSpliced, s.SplicedBytes)
	for _, b := range s.Backends {
		gauge(dQueue, float64(b.Queue), b.Name)
		for _, sv := range b.Servers {
			gauge(dUpConns, float64(sv.Conns), b.Name, sv.Addr)
			gauge(dOutst, float64(sv.Outstanding), b.Name, sv.Addr)
			if !sv.Judged {
				continue
			}
			up := 0.0
			if sv.Up {
				up = 1
			}
			gauge(dUp, up, b.Name, sv.Addr)
			for st, name := range circuitStates {
				v := 0.0
				if st == sv.Circuit {
					v = 1
				}
				gauge(dCircuit, v, b.Name, sv.Addr, name)
			}
			gauge(dLimit, float64(sv.Limit), b.Name, sv.Addr)
		}
	}
	for status, n := range s.Refused {
		counter(dRefused, n, strconv.Itoa(status))
	}
	for status, n := range s.UpstreamErrors {
		counter(dUpErr, n, strconv.Itoa(status))
	}
	counter(dShed, s.Shed)
	counter(dRetries, s.Retries)
	counter(dReloads, s.ReloadsSucceeded, "success")
	counter(dReloads, s.ReloadsFailed, "failure")
	counter(dLogLines, s.AccessLogLines)
	counter(dLogDrops, s.AccessLogDrops)
	counter(dLogErrs, s.AccessLogErrors)
	draining := 0.0
	if s.Draining {
		draining = 1
	}
	gauge(dDraining, draining)
}

// constHistogram converts h to Prometheus's cumulative buckets, in seconds.
func constHistogram(d *prometheus.Desc, h *Histogram, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(Bounds))
	var cum uint64
	for i, b := range Bounds {
		cum += h.Counts[i]
		buckets[float64(b)/1e9] = cum
	}
	cum += h.Counts[len(Bounds)]
	return prometheus.MustNewConstHistogram(d, cum, float64(h.Sum)/1e9, buckets, labels...)
}

// Handler serves src's metrics, the Go runtime's and the process's in the
// Prometheus text format.
func Handler(src Source) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(src),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

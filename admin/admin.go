// Package admin serves Apex's administrative HTTP endpoint with the
// standard library's net/http, on its own goroutines and its own listener:
// never on the data-path loops.
package admin

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/apex-epoll/apex/metrics"
)

// State is what the endpoint reports about the running proxy.
type State interface {
	// Draining reports whether a shutdown has begun.
	Draining() bool
	// ConfigTOML is the running configuration as TOML.
	ConfigTOML() ([]byte, error)
	// Snapshot gathers the counters /metrics exposes.
	metrics.Source
}

// Server is a running admin endpoint.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Start listens on addr and serves:
//
//	/healthz        200 "ok" while serving, 503 "draining" during shutdown
//	/config         the running configuration as TOML
//	/metrics        Prometheus metrics (text exposition format)
//	/debug/pprof/   the Go profiler (net/http/pprof)
func Start(addr string, st State, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if st.Draining() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("draining\n"))
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /config", func(w http.ResponseWriter, r *http.Request) {
		b, err := st.ConfigTOML()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/toml")
		w.Write(b)
	})
	mux.Handle("GET /metrics", metrics.Handler(st))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s := &Server{ln: ln, srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		// CPU profiles take their duration (?seconds=N) to answer.
		WriteTimeout: 5 * time.Minute,
	}}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin endpoint stopped", "err", err)
		}
	}()
	log.Info("admin endpoint", "listen", ln.Addr().String())
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the endpoint, waiting up to ctx for requests in progress.
func (s *Server) Close(ctx context.Context) error { return s.srv.Shutdown(ctx) }

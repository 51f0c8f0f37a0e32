package admin

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/apex-epoll/apex/metrics"
)

type fakeState struct{ draining atomic.Bool }

func (f *fakeState) Draining() bool { return f.draining.Load() }
func (f *fakeState) ConfigTOML() ([]byte, error) {
	return []byte("[server]\nlisten = ['127.0.0.1:1']\n"), nil
}

func (f *fakeState) Snapshot() *metrics.Snapshot {
	s := &metrics.Snapshot{
		Routes:      []metrics.Route{{Route: "/", Backend: "app"}},
		ClientConns: 3,
		Refused:     map[int]uint64{431: 2},
		Backends:    []metrics.Backend{{Name: "app", Queue: 1, Servers: []metrics.Server{{Addr: "127.0.0.1:9", Conns: 4}}}},
	}
	s.Routes[0].Requests[2] = 7
	s.Routes[0].Duration.Observe(2e6) // 2 ms
	s.Routes[0].Upstream.Observe(20e9)
	return s
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	st := &fakeState{}
	s, err := Start("127.0.0.1:0", st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	base := "http://" + s.Addr()
	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz: %d %q", code, body)
	}
	if code, body := get(t, base+"/config"); code != 200 || !strings.Contains(body, "[server]") {
		t.Fatalf("config: %d %q", code, body)
	}
	if code, body := get(t, base+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("pprof: %d", code)
	}
	code, body := get(t, base+"/metrics")
	for _, want := range []string{
		`apex_requests_total{backend="app",code="2xx",route="/"} 7`,
		`apex_request_duration_seconds_bucket{backend="app",route="/",le="0.001"} 0`,
		`apex_request_duration_seconds_bucket{backend="app",route="/",le="0.0025"} 1`,
		`apex_request_duration_seconds_sum{backend="app",route="/"} 0.002`,
		`apex_upstream_response_seconds_bucket{backend="app",le="10"} 0`,
		`apex_upstream_response_seconds_bucket{backend="app",le="+Inf"} 1`,
		`apex_client_connections 3`,
		`apex_refused_requests_total{status="431"} 2`,
		`apex_upstream_connections{backend="app",server="127.0.0.1:9"} 4`,
		`apex_backend_queue_depth{backend="app"} 1`,
		`apex_draining 0`,
		`go_goroutines `,
		`process_open_fds `,
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Fatalf("metrics: %d, no %q in\n%s", code, want, body)
		}
	}
	st.draining.Store(true)
	if code, body := get(t, base+"/healthz"); code != 503 || body != "draining\n" {
		t.Fatalf("healthz while draining: %d %q", code, body)
	}
}

package proxy

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/apex-epoll/apex/admin"
)

// scrape reads /metrics into a map from "name{labels}" to value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsFollowTraffic: counters rise with real traffic and carry the
// route, backend, status and server labels.
func TestMetricsFollowTraffic(t *testing.T) {
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	conf := "[[route]]\npath_prefix = \"/fixed\"\nreturn = 204\n\n" + backendTOML(be.addr(), "")
	s, addr := startProxy(t, "", conf)
	adm, err := admin.Start("127.0.0.1:0", s, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close(context.Background())
	base := "http://" + adm.Addr()

	before := scrape(t, base)
	c := dial(t, addr)
	br := bufio.NewReader(c)
	for i := 0; i < 5; i++ {
		if resp, _ := roundTrip(t, c, br, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n", "GET"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if resp, _ := roundTrip(t, c, br, "GET /fixed HTTP/1.1\r\nHost: x\r\n\r\n", "GET"); resp.StatusCode != 204 {
		t.Fatalf("fixed: %d", resp.StatusCode)
	}
	bad := dial(t, addr)
	bbr := bufio.NewReader(bad)
	if resp, _ := roundTrip(t, bad, bbr, "GET /x HTTP/1.1\r\nHost: x\r\nBad Field: y\r\n\r\n", "GET"); resp.StatusCode != 400 {
		t.Fatalf("bad request: %d", resp.StatusCode)
	}
	m := scrape(t, base)
	want := map[string]float64{
		`apex_requests_total{backend="app",code="2xx",route="/"}`:      5,
		`apex_requests_total{backend="",code="2xx",route="/fixed"}`:    1,
		`apex_requests_total{backend="",code="4xx",route=""}`:          1,
		`apex_refused_requests_total{status="400"}`:                    1,
		`apex_request_duration_seconds_count{backend="app",route="/"}`: 5,
		`apex_upstream_response_seconds_count{backend="app"}`:          5,
		`apex_client_connections_accepted_total`:                       2,
		`apex_config_reloads_total{result="success"}`:                  0,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got-before[k] != v {
			t.Errorf("%s = %v (before %v), want +%v", k, got, before[k], v)
		}
	}
	if m[`apex_client_connections`] < 1 {
		t.Errorf("open client connections %v", m[`apex_client_connections`])
	}
	if got := m[`apex_upstream_connections{backend="app",server="`+be.addr()+`"}`]; got < 1 {
		t.Errorf("upstream connections %v", got)
	}
	if m[`apex_bytes_total{direction="in",side="client"}`] <= before[`apex_bytes_total{direction="in",side="client"}`] ||
		m[`apex_bytes_total{direction="out",side="client"}`] <= before[`apex_bytes_total{direction="out",side="client"}`] {
		t.Errorf("client byte counters did not move")
	}
	if t.Failed() {
		for k, v := range m {
			if strings.HasPrefix(k, "apex_") {
				t.Logf("%s %v", k, v)
			}
		}
	}
}

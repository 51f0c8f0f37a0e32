package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// The apex-admin target answers the operations question "what do the admin
// endpoint and metrics collection cost?": apex with an [admin] listener,
// and /metrics scraped once per second during every measured run. Run it
// beside apex (which has no [admin]) in one session, ideally interleaved:
//
//	go run ./tools/bench -targets direct,apex,apex-admin -interleave
//
// The per-loop counters themselves are always kept, with or without
// [admin]; what this measures is the listener plus the scrapes (a task
// posted to every loop, the loops copying their counters, the text
// exposition on the admin goroutine), at a rate 15 times Prometheus's
// usual 15 s.

// adminScrapeInterval is apex-admin's scrape interval.
const adminScrapeInterval = time.Second

func init() {
	registerApexVariant(apexVariant{
		Name:        "apex-admin",
		Description: fmt.Sprintf("apex with [admin] listen, GET /metrics every %v during each measured run", adminScrapeInterval),
		Admin:       true,
		Scrape:      adminScrapeInterval,
	})
}

// scrapeStats is what one measured run's scraper saw.
type scrapeStats struct {
	scrapes  int     // answered with 200 and Prometheus text naming apex_requests_total
	failures int     // anything else: an error, another status, an unexpected body
	maxMs    float64 // the slowest scrape, request to last body byte
	lastErr  string  // the last failure, "" if none
}

// maxScrapeBytes bounds the body read from /metrics (a few KiB in practice).
const maxScrapeBytes = 4 << 20

// scrapeMetrics GETs url every interval, as a Prometheus server would,
// until ctx is done, and returns what it saw. The first scrape is one
// interval after the start, so a run of D seconds has about D/interval of
// them. One keep-alive connection is reused, as Prometheus does.
func scrapeMetrics(ctx context.Context, url string, every time.Duration) scrapeStats {
	var st scrapeStats
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return st
		case <-tick.C:
		}
		t0 := time.Now()
		err := scrapeOnce(ctx, client, url)
		if ctx.Err() != nil && err != nil {
			return st // cut short by the end of the run: not a failure
		}
		st.maxMs = max(st.maxMs, float64(time.Since(t0).Microseconds())/1000)
		if err != nil {
			st.failures++
			st.lastErr = err.Error()
			continue
		}
		st.scrapes++
	}
}

// scrapeOnce does one GET of /metrics and checks that the answer is
// apex's Prometheus text.
func scrapeOnce(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxScrapeBytes))
	if err != nil {
		return fmt.Errorf("GET %s: reading body: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	if !bytes.Contains(body, []byte("apex_requests_total")) {
		return fmt.Errorf("GET %s: %d bytes without apex_requests_total", url, len(body))
	}
	return nil
}

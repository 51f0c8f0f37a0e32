package admin

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

type fakeState struct{ draining atomic.Bool }

func (f *fakeState) Draining() bool { return f.draining.Load() }
func (f *fakeState) ConfigTOML() ([]byte, error) {
	return []byte("[server]\nlisten = ['127.0.0.1:1']\n"), nil
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
	st.draining.Store(true)
	if code, body := get(t, base+"/healthz"); code != 503 || body != "draining\n" {
		t.Fatalf("healthz while draining: %d %q", code, body)
	}
}

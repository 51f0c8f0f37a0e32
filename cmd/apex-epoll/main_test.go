package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestVersionAndHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "apex-epoll ") {
		t.Fatalf("-version: code %d, out %q", code, out.String())
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"-help"}, &out, &errb); code != 0 {
		t.Fatalf("-help: code %d", code)
	}
	for _, flag := range []string{"-config", "-check", "-version", "-log-level"} {
		if !strings.Contains(errb.String(), flag) {
			t.Errorf("-help does not list %s:\n%s", flag, errb.String())
		}
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("[server]\nlisten = \"127.0.0.1:8080\"\n[[backend]]\nname = \"app\"\nservers = [\"127.0.0.1:9000\"]\n[[route]]\nbackend = \"app\"\n"), 0o644)
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[server]\nlisten = \"127.0.0.1:8080\"\n[[backend]]\nname = \"app\"\nservers = [\"127.0.0.1:9000\"]\nconns = \"many\"\n[[route]]\nbackend = \"app\"\n"), 0o644)
	var out, errb bytes.Buffer
	if code := run([]string{"-config", good, "-check"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "valid") {
		t.Fatalf("valid file: code %d, out %q, err %q", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	code := run([]string{"-config", bad, "-check"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "bad.toml:6: backend[0].conns:") {
		t.Fatalf("invalid file: code %d, stderr %q (want file:line: key)", code, errb.String())
	}
}

// With no -config the built-in default answers on 127.0.0.1:8080, and
// SIGTERM stops it with exit code 0.
func TestDefaultConfigServesAndStops(t *testing.T) {
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(nil, &out, &errb) }()
	var resp *http.Response
	var err error
	for i := 0; i < 100; i++ {
		if resp, err = http.Get("http://127.0.0.1:8080/"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("default config not answering: %v\n%s", err, errb.String())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Apex is running") {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	http.DefaultClient.CloseIdleConnections()
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d after SIGTERM", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop on SIGTERM")
	}
	if !strings.Contains(errb.String(), "apex serving") || !strings.Contains(errb.String(), "stopped") {
		t.Fatalf("start/stop not logged:\n%s", errb.String())
	}
}

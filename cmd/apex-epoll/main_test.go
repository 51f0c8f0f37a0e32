package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestSIGHUPReload runs the binary's main path on a file: SIGHUP applies
// an edited file (a new page, a second listener), and an invalid file is
// logged with its file, line and key while the old configuration serves on.
func TestSIGHUPReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "apex.toml")
	a1, a2 := freeAddr(t), freeAddr(t)
	page := func(listen, body string) string {
		return fmt.Sprintf("[server]\nlisten = %s\n\n[[route]]\nreturn = 200\nbody = %q\n", listen, body)
	}
	if err := os.WriteFile(path, []byte(page(fmt.Sprintf("%q", a1), "one")), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- run([]string{"-config", path}, &out, &errb) }()
	defer func() {
		http.DefaultClient.CloseIdleConnections()
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("exit code %d", code)
			}
		case <-time.After(10 * time.Second):
			t.Error("did not stop on SIGTERM")
		}
	}()
	waitBody := func(url, want string) {
		t.Helper()
		var got string
		for i := 0; i < 250; i++ {
			if _, body, err := get(url); err == nil {
				if got = body; got == want {
					return
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%s: got %q, want %q\nlog:\n%s", url, got, want, errb.String())
	}
	waitBody("http://"+a1+"/", "one")

	both := fmt.Sprintf("[%q, %q]", a1, a2)
	if err := os.WriteFile(path, []byte(page(both, "two")), 0o644); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitBody("http://"+a1+"/", "two")
	waitBody("http://"+a2+"/", "two")

	// Line 3 has an unknown key: the error names file, line and key.
	bad := fmt.Sprintf("[server]\nlisten = %q\nlistne = 1\n", a1)
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	want := path + ":3"
	for i := 0; i < 250 && !strings.Contains(errb.String(), "reload failed"); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	log := errb.String()
	if !strings.Contains(log, "reload failed") || !strings.Contains(log, want) || !strings.Contains(log, "listne") {
		t.Fatalf("invalid file not reported with %s and the key:\n%s", want, log)
	}
	waitBody("http://"+a2+"/", "two")
	if !strings.Contains(log, "reloaded") {
		t.Fatalf("successful reload not logged:\n%s", log)
	}
}

// TestSIGUSR1ReopensAccessLog: after logrotate renames the file, SIGUSR1
// makes Apex write to a fresh one at the configured path.
func TestSIGUSR1ReopensAccessLog(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	cfgPath := filepath.Join(dir, "apex.toml")
	a := freeAddr(t)
	conf := fmt.Sprintf("[server]\nlisten = %q\n\n[log]\naccess = %q\nformat = \"combined\"\n\n[[route]]\nreturn = 200\nbody = \"hi\"\n", a, logPath)
	if err := os.WriteFile(cfgPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- run([]string{"-config", cfgPath}, &out, &errb) }()
	defer func() {
		http.DefaultClient.CloseIdleConnections()
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("did not stop on SIGTERM")
		}
	}()
	waitLog := func(path, want string) {
		t.Helper()
		for i := 0; i < 250; i++ {
			if b, _ := os.ReadFile(path); strings.Contains(string(b), want) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		b, _ := os.ReadFile(path)
		t.Fatalf("%s: no %q in %q\nlog:\n%s", path, want, b, errb.String())
	}
	var err error
	for i := 0; i < 250; i++ {
		if _, _, err = get("http://" + a + "/before"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	waitLog(logPath, `"GET /before HTTP/1.1" 200`)
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGUSR1)
	for i := 0; i < 250 && !strings.Contains(errb.String(), "access log reopened"); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if _, _, err := get("http://" + a + "/after"); err != nil {
		t.Fatal(err)
	}
	waitLog(logPath, `"GET /after HTTP/1.1" 200`)
	if b, _ := os.ReadFile(logPath + ".1"); strings.Contains(string(b), "/after") {
		t.Fatalf("line written to the rotated file: %q", b)
	}
}

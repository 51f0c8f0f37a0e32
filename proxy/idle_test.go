package proxy

import (
	"bytes"
	"io"
	"net/http"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// Idle keep-alive connections cost little: after one request each, 2,000
// idle client connections add at most 2 KiB of Go heap apiece to the
// proxy (the client sockets are raw descriptors, so the count is the
// proxy's). The kernel's socket memory is not in the process.
func TestIdleConnectionMemory(t *testing.T) {
	be := startBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	s, _ := startProxy(t, "", backendTOML(be.addr(), ""))
	ap := s.Addrs()[0]
	const n = 2000
	req := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	buf := make([]byte, 4096)
	fds := make([]int, 0, n)
	defer func() {
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}()
	open := func() int {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		sa := &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
		if err := syscall.Connect(fd, sa); err != nil {
			t.Fatal(err)
		}
		tv := syscall.NsecToTimeval(int64(5 * time.Second))
		syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
		if _, err := syscall.Write(fd, req); err != nil {
			t.Fatal(err)
		}
		// A read with SO_RCVTIMEO fails with EINTR when a signal (the Go
		// runtime's preemption) lands, whatever SA_RESTART says: retry.
		m, err := syscall.Read(fd, buf)
		for err == syscall.EINTR {
			m, err = syscall.Read(fd, buf)
		}
		if err != nil || !bytes.HasSuffix(buf[:m], []byte("ok")) {
			t.Fatalf("response %q %v", buf[:max(m, 0)], err)
		}
		return fd
	}
	// Warm up pools and the backend's connections.
	for i := 0; i < 50; i++ {
		syscall.Close(open())
	}
	time.Sleep(100 * time.Millisecond)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < n; i++ {
		fds = append(fds, open())
	}
	time.Sleep(100 * time.Millisecond)
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / n
	t.Logf("owner %s: %.0f bytes of Go heap per idle keep-alive connection", ownerMode, per)
	if per > 2048 {
		t.Fatalf("%.0f bytes of heap per idle connection, want at most 2 KiB", per)
	}
}

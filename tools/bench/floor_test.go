package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The floor forwarder moves bytes both ways unchanged, small and up to the
// 64 KiB of the bench's large body, on several connections. (Not much
// more: it waits on a full socket without reading the other side, so an
// echo of megabytes could fill both directions and stall; requests and
// responses of the bench never do.)
func TestFloorForwards(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }() // echo
		}
	}()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// In a child process (TestMain), as the bench runs it: the forwarder
	// keeps its thread in raw system calls and would hold a P of the tests.
	cmd := exec.Command(os.Args[0], "-serve-floor", addr, "-floor-upstream", up.Addr().String())
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var c net.Conn
	for i := 0; i < 100; i++ {
		if c, err = net.Dial("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	conns := []net.Conn{c}
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		for _, size := range []int{1, 14, 4096, 64 << 10} {
			msg := bytes.Repeat([]byte{byte('a' + i)}, size)
			msg[0] = byte(size)
			errc := make(chan error, 1)
			go func() { _, err := c.Write(msg); errc <- err }()
			got := make([]byte, size)
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("conn %d, %d bytes: %v", i, size, err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("conn %d: %d bytes came back changed", i, size)
			}
		}
	}
}

// The origin responder answers each request with exactly the bytes the
// bench's backend sends for its path (404 for others), keep-alive, on
// several connections.
func TestOriginAnswersLikeTheBackend(t *testing.T) {
	addr := startServeChild(t, "-serve-origin")
	conns := dialN(t, addr, 3)
	r := newResponder()
	for i, c := range conns {
		for _, path := range []string{"/", "/64k", "/nope", "/"} {
			if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
				t.Fatal(err)
			}
			want, ok := r.byPath[path]
			if !ok {
				want = r.notFound
			}
			got := make([]byte, len(want))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("conn %d, %s: %v", i, path, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("conn %d, %s: got %q, want %q", i, path, got[:min(len(got), 80)], want[:min(len(want), 80)])
			}
		}
	}
}

// The floor-pipe forwarder, in front of the bench's backend, gives every
// client exactly the bytes the backend sends for its path, keep-alive, on
// several connections at once: small and 64 KiB bodies, and requests
// written on all connections before any answer is read, so several share
// an upstream write and come back in one read.
func TestFloorPipeForwardsInOrder(t *testing.T) {
	forwardsInOrder(t, "-serve-floor-pipe")
}

// The floor-uring forwarder does the same on io_uring.
func TestFloorURingForwardsInOrder(t *testing.T) {
	// A kernel without io_uring, or a sandbox that forbids it, cannot run
	// the target at all (the bench then reports its error).
	var p iouParams
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 4, uintptr(unsafe.Pointer(&p)), 0)
	if e == unix.ENOSYS || e == unix.EPERM {
		t.Skipf("io_uring_setup: %v", e)
	}
	if e == 0 {
		unix.Close(int(fd))
	}
	forwardsInOrder(t, "-serve-floor-uring")
}

// forwardsInOrder starts the bench's backend and the batching forwarder
// the flag names in front of it, and checks every answer's bytes.
func forwardsInOrder(t *testing.T, flag string) {
	backend := startServeChild(t, "-serve-backend")
	dialN(t, backend, 1) // listening before the forwarder dials it
	addr := startServeChild(t, flag, "-floor-upstream", backend)
	conns := dialN(t, addr, 12)
	r := newResponder()
	paths := []string{"/", "/64k", "/nope"}
	for round := 0; round < 6; round++ {
		// Neighbours ask for different paths: an answer given to the
		// wrong client has the wrong length.
		for i, c := range conns {
			if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", paths[(round+i)%3]); err != nil {
				t.Fatalf("round %d, conn %d: %v", round, i, err)
			}
		}
		for i, c := range conns {
			path := paths[(round+i)%3]
			want, ok := r.byPath[path]
			if !ok {
				want = r.notFound
			}
			got := make([]byte, len(want))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("round %d, conn %d, %s: %v", round, i, path, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("round %d, conn %d, %s: got %q", round, i, path, got[:min(len(got), 80)])
			}
		}
	}
}

// startServeChild runs this test binary as one of the bench's servers
// (TestMain) on a free port and returns its address; the child is killed
// when the test ends.
func startServeChild(t *testing.T, flag string, more ...string) string {
	t.Helper()
	addr, _ := startServeChildPID(t, flag, more...)
	return addr
}

// startServeChildPID is startServeChild that also returns the child's PID.
func startServeChildPID(t *testing.T, flag string, more ...string) (string, int) {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// A child: the servers keep their thread in raw system calls and
	// would hold a P of the tests.
	cmd := exec.Command(os.Args[0], append([]string{flag, addr}, more...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return addr, cmd.Process.Pid
}

// dialN opens n connections to addr, retrying for 2 s while the server
// starts; they close when the test ends.
func dialN(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	var conns []net.Conn
	for tries := 0; len(conns) < n; tries++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			if tries == 100 {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(20 * time.Second))
		conns = append(conns, c)
	}
	return conns
}

package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apex-epoll/apex/config"
)

// fdChildEnv makes the test binary run a proxy with a small descriptor
// limit instead of the tests (see TestMain).
const fdChildEnv = "APEX_FDLIMIT_CHILD"

// runFDLimitChild serves a fixed route with RLIMIT_NOFILE = 40 and prints
// its address; it stops when stdin closes.
func runFDLimitChild() {
	rl := syscall.Rlimit{Cur: 40, Max: 40}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		fmt.Println("setrlimit:", err)
		os.Exit(1)
	}
	cfg, err := config.Parse("fd.toml", []byte("[server]\nlisten = \"127.0.0.1:0\"\nloops = 1\n[[route]]\nreturn = 200\nbody = \"ok\"\n"))
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	s, err := New(cfg, testLogger())
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	s.Start()
	fmt.Println(s.Addrs()[0].String())
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b)[strings.LastIndexByte(string(b), ')')+2:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

// When accept fails with EMFILE, existing connections keep being served,
// the loop does not spin, and accepting resumes when descriptors free up.
func TestFDExhaustion(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fdChildEnv+"=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSpace(line)
	if _, err := net.ResolveTCPAddr("tcp", addr); err != nil {
		t.Fatalf("child said %q", addr)
	}
	get := func(c net.Conn, br *bufio.Reader) error {
		c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "ok" {
			return fmt.Errorf("body %q", b)
		}
		return nil
	}
	// One keep-alive connection that must keep working.
	keep, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer keep.Close()
	keepBr := bufio.NewReader(keep)
	if err := get(keep, keepBr); err != nil {
		t.Fatal(err)
	}
	// Exhaust the child's descriptors: the kernel completes handshakes into
	// the backlog, but the child cannot accept them.
	var extra []net.Conn
	defer func() {
		for _, c := range extra {
			c.Close()
		}
	}()
	for i := 0; i < 60; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		extra = append(extra, c)
	}
	time.Sleep(300 * time.Millisecond)
	// The last connections are stuck in the accept queue.
	stuck := extra[len(extra)-1]
	stuck.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	io.WriteString(stuck, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := stuck.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection beyond the descriptor limit was served: the limit did not bite")
	}
	// Existing connections are still served, and the loop is not spinning.
	before := cpuTicks(cmd.Process.Pid)
	for i := 0; i < 5; i++ {
		if err := get(keep, keepBr); err != nil {
			t.Fatalf("existing connection not served while accept fails: %v", err)
		}
	}
	time.Sleep(time.Second)
	if used := cpuTicks(cmd.Process.Pid) - before; used > 30 { // ticks of 10 ms
		t.Fatalf("proxy used %d0 ms of CPU in about 1 s while accept failed: spinning", used)
	}
	// Free descriptors (all but the waiting one): it is accepted and
	// served, and so is a new connection.
	for _, c := range extra[:len(extra)-1] {
		c.Close()
	}
	fresh, ferr := net.Dial("tcp", addr)
	if ferr == nil {
		ferr = get(fresh, bufio.NewReader(fresh))
		fresh.Close()
	}
	if ferr != nil {
		t.Fatalf("new connection not served after descriptors were freed: %v", ferr)
	}
	stuck.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(stuck), nil)
	if err != nil {
		t.Fatalf("waiting connection not served after descriptors were freed: %v", err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

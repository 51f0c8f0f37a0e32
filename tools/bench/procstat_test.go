package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// statLine builds a /proc/PID/stat line with the given fields (proc(5)
// numbering: 4 ppid, 5 pgrp, 14 utime, 15 stime, 16 cutime, 17 cstime).
func statLine(pid int, comm string, ppid, pgrp int, utime, stime uint64) string {
	return fmt.Sprintf("%d (%s) S %d %d %d 0 -1 4194560 100 0 0 0 %d %d 55 66 20 0 3 0 123 456789 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
		pid, comm, ppid, pgrp, pgrp, utime, stime)
}

func TestParseStat(t *testing.T) {
	s, err := parseStat([]byte(statLine(4242, "nginx", 1, 4242, 1234, 567)))
	if err != nil {
		t.Fatal(err)
	}
	if s.pid != 4242 || s.comm != "nginx" || s.ppid != 1 || s.pgrp != 4242 || s.utime != 1234 || s.stime != 567 {
		t.Fatalf("got %+v", s)
	}
	// comm with spaces and parentheses: fields count from the last ')'
	s, err = parseStat([]byte(statLine(7, "evil) S 1 2 (name", 3, 99, 10, 20)))
	if err != nil {
		t.Fatal(err)
	}
	if s.comm != "evil) S 1 2 (name" || s.ppid != 3 || s.pgrp != 99 || s.utime != 10 || s.stime != 20 {
		t.Fatalf("got %+v", s)
	}
	// cutime/cstime (fields 16, 17: 55 and 66 above) are not counted
	if s.utime+s.stime != 30 {
		t.Fatalf("utime+stime = %d", s.utime+s.stime)
	}
	for _, bad := range []string{"", "12 nocomm S 1", "x (a) S 1 2", "5 (a) S 1 2 3"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) accepted", bad)
		}
	}
}

func TestParseVmHWM(t *testing.T) {
	status := "Name:\tapex-epoll\nVmPeak:\t  800000 kB\nVmSize:\t  700000 kB\nVmHWM:\t    9876 kB\nVmRSS:\t    9000 kB\n"
	if k, ok := parseVmHWM([]byte(status)); !ok || k != 9876 {
		t.Fatalf("got %d, %v", k, ok)
	}
	if _, ok := parseVmHWM([]byte("Name:\tkthreadd\nState:\tS\n")); ok {
		t.Fatal("VmHWM found in a status without it")
	}
}

// fakeProc builds a /proc tree: a proxy group (pgid 100: master + worker),
// an unrelated process and a stray non-PID directory.
func fakeProc(t *testing.T, workerTicks [2]uint64) string {
	t.Helper()
	root := t.TempDir()
	write := func(pid int, stat, status string) {
		d := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, "stat"), []byte(stat), 0o644)
		os.WriteFile(filepath.Join(d, "status"), []byte(status), 0o644)
		os.WriteFile(filepath.Join(d, "clear_refs"), nil, 0o644)
	}
	write(100, statLine(100, "nginx", 1, 100, 5, 5), "VmHWM:\t 1000 kB\n")
	write(101, statLine(101, "nginx", 100, 100, workerTicks[0], workerTicks[1]), "VmHWM:\t 3000 kB\n")
	write(200, statLine(200, "wrk", 1, 200, 9999, 9999), "VmHWM:\t 50000 kB\n")
	os.MkdirAll(filepath.Join(root, "self"), 0o755)
	return root
}

func withProcRoot(t *testing.T, root string) {
	t.Helper()
	old := procRoot
	procRoot = root
	t.Cleanup(func() { procRoot = old })
}

func TestSampleGroupAndCPUPerRequest(t *testing.T) {
	withProcRoot(t, fakeProc(t, [2]uint64{100, 50}))
	before, err := sampleGroup(100)
	if err != nil {
		t.Fatal(err)
	}
	if before.nprocs != 2 || before.ticks != 5+5+100+50 || before.hwmKiB != 4000 {
		t.Fatalf("before = %+v", before)
	}
	// the worker burns 300 more ticks (3 s of CPU) while 100000 requests complete
	withProcRoot(t, fakeProc(t, [2]uint64{300, 150}))
	after, err := sampleGroup(100)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := cpuUsPerReq(before.ticks, after.ticks, 100000)
	if !ok || math.Abs(got-30) > 1e-9 { // 3 s / 100000 = 30 µs
		t.Fatalf("cpuUsPerReq = %v, %v; want 30", got, ok)
	}
	if !resetPeakRSS(100) {
		t.Fatal("resetPeakRSS failed on the fake tree")
	}
	b, _ := os.ReadFile(filepath.Join(procRoot, "101", "clear_refs"))
	if string(b) != "5" {
		t.Fatalf("clear_refs got %q, want \"5\"", b)
	}
	if _, err := sampleGroup(12345); err == nil {
		t.Fatal("sampleGroup of an empty group succeeded")
	}
}

func TestCPUUsPerReqEdges(t *testing.T) {
	if _, ok := cpuUsPerReq(10, 20, 0); ok {
		t.Error("zero requests accepted")
	}
	if _, ok := cpuUsPerReq(20, 10, 5); ok {
		t.Error("backwards counter accepted")
	}
	if v, ok := cpuUsPerReq(0, 1, 1); !ok || v != 10000 { // one tick = 10 ms
		t.Errorf("one tick per request = %v µs", v)
	}
}

// The real /proc: this test process is found in its own process group.
func TestSampleGroupLive(t *testing.T) {
	u, err := sampleGroup(syscall.Getpgrp())
	if err != nil {
		t.Fatal(err)
	}
	if u.nprocs < 1 || u.hwmKiB <= 0 {
		t.Fatalf("live sample = %+v", u)
	}
}

func TestCPUPct(t *testing.T) {
	// 150 ticks (1.5 s) + 0.5 s of a reaped child over 2 s of wall = 100 % of one CPU
	if got := cpuPct(100, 250, 0.5, 2); math.Abs(got-100) > 1e-9 {
		t.Fatalf("cpuPct = %v", got)
	}
	if cpuPct(10, 5, 0, 1) != 0 || cpuPct(0, 5, 0, 0) != 0 {
		t.Fatal("bad inputs must give 0")
	}
}

func TestParseLoadAvgAndCPULine(t *testing.T) {
	l1, run, err := parseLoadAvg([]byte("0.52 0.31 0.20 3/181 12345\n"))
	if err != nil || l1 != 0.52 || run != 3 {
		t.Fatalf("parseLoadAvg = %v %v %v", l1, run, err)
	}
	if _, _, err := parseLoadAvg([]byte("garbage")); err == nil {
		t.Fatal("garbage loadavg accepted")
	}
	busy, total, err := parseCPULine([]byte("cpu  100 5 50 800 40 3 2 0 7 0\ncpu0 1 2 3 4 5 6 7 8\n"))
	if err != nil {
		t.Fatal(err)
	}
	// busy = user+nice+system+irq+softirq+steal; idle and iowait are not busy
	if busy != 100+5+50+3+2+0 || total != 100+5+50+800+40+3+2+0 {
		t.Fatalf("busy %d total %d", busy, total)
	}
	if _, _, err := parseCPULine([]byte("intr 1 2 3\n")); err == nil {
		t.Fatal("non-cpu line accepted")
	}
}

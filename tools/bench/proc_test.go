package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// groupAlive reports whether any process is left in the group.
func groupAlive(pgid int) bool {
	pids, _ := groupPIDs(pgid)
	for _, pid := range pids {
		// a zombie waiting to be reaped is not alive
		if s, err := readState(pid); err == nil && s != "Z" {
			return true
		}
	}
	return false
}

func readState(pid int) (string, error) {
	raw, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", procRoot, pid))
	if err != nil {
		return "", err
	}
	b := string(raw)
	i := strings.LastIndexByte(b, ')')
	if i < 0 || i+3 > len(b) {
		return "", fmt.Errorf("bad stat")
	}
	return b[i+2 : i+3], nil
}

func waitGone(t *testing.T, pgid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for groupAlive(pgid) {
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still alive", pgid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the whole group: the leader and what it forked (like nginx's
// workers), even when the leader ignores SIGTERM.
func TestStopKillsWholeGroup(t *testing.T) {
	p, err := startProc("sh", "", "", "", nil, "sh", "-c", "trap '' TERM; sleep 30 & sleep 30 & wait")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if pids, _ := groupPIDs(p.pgid); len(pids) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("children did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.stop(200 * time.Millisecond)
	waitGone(t, p.pgid)
	if !p.exited() {
		t.Fatal("leader not reaped")
	}
	procs.Lock()
	_, still := procs.m[p]
	procs.Unlock()
	if still {
		t.Fatal("stopped process still registered")
	}
}

// The watchdog kills the groups still registered when its input closes,
// and leaves alone the ones that were unregistered.
func TestWatchdogKillsLeftovers(t *testing.T) {
	left, err := startProc("left", "", "", "", nil, "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	defer left.stop(time.Second)
	kept, err := startProc("kept", "", "", "", nil, "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	defer kept.stop(time.Second)
	in := fmt.Sprintf("add %d\nadd %d\ndel %d\ngarbage\nadd 1\n", left.pgid, kept.pgid, kept.pgid)
	runWatchdog(strings.NewReader(in))
	waitGone(t, left.pgid)
	if err := syscall.Kill(kept.pgid, 0); err != nil || kept.exited() {
		t.Fatalf("the unregistered group was killed (%v)", err)
	}
}

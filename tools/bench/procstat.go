package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of utime/stime in /proc/PID/stat. Linux exports
// USER_HZ = 100 to user space on every architecture Go supports
// (sysconf(_SC_CLK_TCK) returns 100), whatever CONFIG_HZ the kernel uses.
const userHZ = 100

// procRoot is where /proc is read from; tests point it at a fake tree.
var procRoot = "/proc"

// statFields is what the bench needs from one /proc/PID/stat line.
type statFields struct {
	pid   int
	comm  string
	ppid  int
	pgrp  int
	utime uint64 // clock ticks (1/userHZ s)
	stime uint64
}

// parseStat parses /proc/PID/stat. The comm field is in parentheses and may
// itself contain spaces and ')' so the fields are counted from the LAST ')'.
// Field numbers are those of proc(5): 4 ppid, 5 pgrp, 14 utime, 15 stime.
func parseStat(b []byte) (statFields, error) {
	var s statFields
	open := bytes.IndexByte(b, '(')
	closeIdx := bytes.LastIndexByte(b, ')')
	if open < 0 || closeIdx < open {
		return s, fmt.Errorf("stat: no (comm) in %q", truncate(string(b), 80))
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil {
		return s, fmt.Errorf("stat: bad pid: %v", err)
	}
	s.pid = pid
	s.comm = string(b[open+1 : closeIdx])
	rest := strings.Fields(string(b[closeIdx+1:]))
	// rest[0] is field 3 (state); field N is rest[N-3].
	if len(rest) < 15-3+1 {
		return s, fmt.Errorf("stat: only %d fields after comm", len(rest))
	}
	get := func(field int) (uint64, error) {
		return strconv.ParseUint(rest[field-3], 10, 64)
	}
	var v [4]uint64
	for i, f := range []int{4, 5, 14, 15} {
		if v[i], err = get(f); err != nil {
			return s, fmt.Errorf("stat: field %d: %v", f, err)
		}
	}
	s.ppid, s.pgrp, s.utime, s.stime = int(v[0]), int(v[1]), v[2], v[3]
	return s, nil
}

// parseVmHWM returns VmHWM (peak resident set size) in KiB from the text of
// /proc/PID/status. ok is false when the line is absent (kernel threads,
// zombies).
func parseVmHWM(status []byte) (kib int64, ok bool) {
	return parseStatusKiB(status, "VmHWM:")
}

// parseStatusKiB returns the size on the line starting with key ("VmRSS:",
// "VmHWM:", ...) of /proc/PID/status, in KiB. ok is false when the line is
// absent or malformed.
func parseStatusKiB(status []byte, key string) (kib int64, ok bool) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, key) {
			continue
		}
		f := strings.Fields(strings.TrimPrefix(line, key))
		if len(f) < 1 {
			return 0, false
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, false
		}
		if len(f) > 1 {
			switch strings.ToLower(f[1]) {
			case "kb":
			case "mb":
				n *= 1024
			case "gb":
				n *= 1024 * 1024
			}
		}
		return n, true
	}
	return 0, false
}

// groupPIDs lists the PIDs of the live processes whose process group is pgid.
func groupPIDs(pgid int) ([]int, error) {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		s, err := parseStat(b)
		if err != nil || s.pgrp != pgid {
			continue
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// groupUsage is a snapshot of the CPU time and peak RSS of a process group.
type groupUsage struct {
	ticks  uint64 // utime+stime of every process in the group, clock ticks
	hwmKiB int64  // sum of VmHWM over the group's processes
	nprocs int
}

// sampleGroup reads utime+stime and VmHWM of every process in pgid. The
// per-process figures already include all of the process's threads.
func sampleGroup(pgid int) (groupUsage, error) {
	var u groupUsage
	pids, err := groupPIDs(pgid)
	if err != nil {
		return u, err
	}
	for _, pid := range pids {
		dir := filepath.Join(procRoot, strconv.Itoa(pid))
		b, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue
		}
		s, err := parseStat(b)
		if err != nil {
			continue
		}
		u.ticks += s.utime + s.stime
		u.nprocs++
		if st, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
			if k, ok := parseVmHWM(st); ok {
				u.hwmKiB += k
			}
		}
	}
	if u.nprocs == 0 {
		return u, fmt.Errorf("no live process in group %d", pgid)
	}
	return u, nil
}

// resetPeakRSS resets VmHWM to the current RSS for every process in the
// group (writing "5" to /proc/PID/clear_refs, Linux >= 4.0), so that VmHWM
// after a run is the peak of that run, not of the process's whole life.
// It reports whether every reset succeeded.
func resetPeakRSS(pgid int) bool {
	pids, err := groupPIDs(pgid)
	if err != nil || len(pids) == 0 {
		return false
	}
	ok := true
	for _, pid := range pids {
		if err := os.WriteFile(filepath.Join(procRoot, strconv.Itoa(pid), "clear_refs"), []byte("5"), 0); err != nil {
			ok = false
		}
	}
	return ok
}

// cpuUsPerReq converts a tick delta into microseconds of CPU per request.
func cpuUsPerReq(before, after uint64, requests int64) (float64, bool) {
	if requests <= 0 || after < before {
		return 0, false
	}
	return float64(after-before) * (1e6 / userHZ) / float64(requests), true
}

// cpuPct is CPU use over a wall-clock window as a percentage of one CPU:
// a tick delta plus extra seconds (e.g. a reaped child's rusage).
func cpuPct(before, after uint64, extraS, wallS float64) float64 {
	if wallS <= 0 || after < before {
		return 0
	}
	return 100 * (float64(after-before)/userHZ + extraS) / wallS
}

// ---- machine quietness ----

// loadAvg returns the 1-minute load average and the instantaneous number of
// runnable scheduling entities from /proc/loadavg.
func loadAvg() (load1 float64, running int, err error) {
	b, err := os.ReadFile(filepath.Join(procRoot, "loadavg"))
	if err != nil {
		return 0, 0, err
	}
	return parseLoadAvg(b)
}

func parseLoadAvg(b []byte) (load1 float64, running int, err error) {
	f := strings.Fields(string(b))
	if len(f) < 4 {
		return 0, 0, fmt.Errorf("loadavg: %q", string(b))
	}
	if load1, err = strconv.ParseFloat(f[0], 64); err != nil {
		return 0, 0, err
	}
	rt := strings.SplitN(f[3], "/", 2)
	if running, err = strconv.Atoi(rt[0]); err != nil {
		return 0, 0, err
	}
	return load1, running, nil
}

// cpuTotals returns busy and total jiffies summed over all CPUs from the
// first line of /proc/stat. iowait counts as idle.
func cpuTotals() (busy, total uint64, err error) {
	b, err := os.ReadFile(filepath.Join(procRoot, "stat"))
	if err != nil {
		return 0, 0, err
	}
	return parseCPULine(b)
}

func parseCPULine(b []byte) (busy, total uint64, err error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", truncate(string(line), 80))
	}
	// user nice system idle iowait irq softirq steal guest guest_nice;
	// guest time is already included in user/nice, so stop at steal.
	for i := 1; i < len(f) && i <= 8; i++ {
		v, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return 0, 0, err
		}
		total += v
		if i != 4 && i != 5 { // idle, iowait
			busy += v
		}
	}
	return busy, total, nil
}

// quietness is one observation of how busy the machine is.
type quietness struct {
	load1   float64
	busyPct float64 // share of all CPUs busy over the sample window, 0-100
}

func (q quietness) String() string {
	return fmt.Sprintf("load1 %.2f, cpu busy %.0f%%", q.load1, q.busyPct)
}

// sampleQuiet measures CPU busy over window and reads the load average.
func sampleQuiet(window time.Duration) (quietness, error) {
	b0, t0, err := cpuTotals()
	if err != nil {
		return quietness{}, err
	}
	time.Sleep(window)
	b1, t1, err := cpuTotals()
	if err != nil {
		return quietness{}, err
	}
	l1, _, err := loadAvg()
	if err != nil {
		return quietness{}, err
	}
	q := quietness{load1: l1}
	if t1 > t0 {
		q.busyPct = 100 * float64(b1-b0) / float64(t1-t0)
	}
	return q, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

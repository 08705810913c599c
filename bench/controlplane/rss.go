package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// operatorComm is the operator's process name (cmd/stow-operator).
const operatorComm = "stow-operator"

// findOperator returns the PID of the one process named operatorComm under
// procRoot (/proc): on the local cluster the operator's container is a
// process of this host. Several or none is an error: the harness must not
// measure the wrong process.
func findOperator(procRoot string) (int, error) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return 0, err
	}
	var found []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "comm"))
		if err == nil && strings.TrimSpace(string(comm)) == operatorComm {
			found = append(found, pid)
		}
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("no %s process on this host (not the local cluster? set BENCH_OPERATOR_PID)", operatorComm)
	case 1:
		return found[0], nil
	default:
		return 0, fmt.Errorf("%d %s processes on this host (%v): set BENCH_OPERATOR_PID", len(found), operatorComm, found)
	}
}

// rssMiB reads VmRSS (current) and VmHWM (peak since start) of a process.
func rssMiB(procRoot string, pid int) (rss, hwm float64, err error) {
	f, err := os.Open(filepath.Join(procRoot, strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	return parseStatus(f)
}

func parseStatus(f *os.File) (rss, hwm float64, err error) {
	sc := bufio.NewScanner(f)
	var seen int
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %q is not a size in kB", k, v)
		}
		if k == "VmRSS" {
			rss = kb / 1024
		} else {
			hwm = kb / 1024
		}
		seen++
	}
	if seen < 2 {
		return 0, 0, fmt.Errorf("no VmRSS and VmHWM in %s", f.Name())
	}
	return rss, hwm, sc.Err()
}

package results

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// DetectMachine reads nproc, memory, kernel, CPU model and load from /proc.
func DetectMachine() Machine {
	m := Machine{NProc: runtime.NumCPU(), Kernel: "unknown", CPUModel: "unknown"}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.LoadAvg = LoadAverage()
	m.CPUModel = procField("/proc/cpuinfo", "model name", m.CPUModel)
	if kb, err := strconv.Atoi(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal", ""), " kB")); err == nil {
		m.MemTotalMiB = kb / 1024
	}
	return m
}

// LoadAverage is the 1, 5 and 15 minute load average ("" if unknown). The
// benchmark machine is shared; what else ran shows here.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	if f := strings.Fields(string(b)); len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return ""
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key, def string) string {
	f, err := os.Open(path)
	if err != nil {
		return def
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return def
}

// StowVersion is $BENCH_STOW_VERSION or `git describe --always --dirty --tags`.
func StowVersion() string {
	if v := os.Getenv("BENCH_STOW_VERSION"); v != "" {
		return v
	}
	out, err := exec.Command("git", "describe", "--always", "--dirty", "--tags").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

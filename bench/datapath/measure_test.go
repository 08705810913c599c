package main

import (
	"context"
	"os"
	"strings"
	"testing"
)

// When BENCH_TEST_ALLOC is set the test binary is only a child that holds
// 64 MiB, so the test can check what wait4's rusage reports for a tree.
func TestMain(m *testing.M) {
	if os.Getenv("BENCH_TEST_ALLOC") == "1" {
		b := make([]byte, 64<<20)
		for i := range b { // touch every page so it is resident
			b[i] = 1
		}
		os.Exit(int(b[len(b)-1]) - 1)
	}
	os.Exit(m.Run())
}

func TestMeasureCountsWaitedForChildren(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes: skipped with -short")
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "BENCH_TEST_ALLOC=1"}
	// The shell is the measured process; the 64 MiB is its child's.
	r, err := measure(context.Background(), env, "sh", "-c", `"$0"; true`, os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if r.MaxRSSKiB < 64<<10 {
		t.Errorf("ru_maxrss = %d KiB, want >= 64 MiB from the child", r.MaxRSSKiB)
	}
	if r.WallS <= 0 || r.UserS+r.SysS <= 0 {
		t.Errorf("no time measured: %+v", r)
	}
	_, err = measure(context.Background(), env, "sh", "-c", "echo first; echo the cause >&2; exit 3")
	if err == nil || !strings.Contains(err.Error(), "the cause") {
		t.Errorf("failure = %v, want the last output line in it", err)
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

func TestLoadConfig(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	tests := []struct {
		name    string
		getenv  func(string) string
		wantErr string
	}{
		{"refuses without BENCH_CLUSTER", env("KUBECONFIG", "/k"), "BENCH_CLUSTER=1"},
		{"refuses BENCH_CLUSTER other than 1", env("BENCH_CLUSTER", "yes", "KUBECONFIG", "/k"), "BENCH_CLUSTER=1"},
		{"needs KUBECONFIG", env("BENCH_CLUSTER", "1"), "KUBECONFIG"},
		{"bad number", env("BENCH_CLUSTER", "1", "KUBECONFIG", "/k", "BENCH_CP_CONFIGS", "many"), "BENCH_CP_CONFIGS"},
		{"unknown part", env("BENCH_CLUSTER", "1", "KUBECONFIG", "/k", "BENCH_CP_PARTS", "sessions,load"), "load"},
		{"defaults", env("BENCH_CLUSTER", "1", "KUBECONFIG", "/k"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(tt.getenv)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.sessions != 50 || c.configs != 5000 || c.concurrent != 200 || c.clutter != 10000 || len(c.parts) != 5 || c.out != "bench/results.json" {
				t.Fatalf("defaults = %+v, want the issues' 50 sessions, 5000 configs, 200 concurrent, 10000 clutter objects, all parts", c)
			}
		})
	}
}

func TestLatencies(t *testing.T) {
	t0 := time.Unix(1000, 0)
	start := map[string]time.Time{"a": t0, "b": t0, "c": t0}
	end := map[string]time.Time{"a": t0.Add(250 * time.Millisecond), "c": t0.Add(2 * time.Second), "x": t0}
	get := func(m map[string]time.Time) func(string) (time.Time, bool) {
		return func(k string) (time.Time, bool) { v, ok := m[k]; return v, ok }
	}
	got, missing := latencies([]string{"a", "b", "c"}, get(start), get(end))
	if missing != 1 || len(got) != 2 || got[0] != 0.25 || got[1] != 2 {
		t.Fatalf("latencies = %v, missing %d; want [0.25 2], 1 missing", got, missing)
	}
}

func TestObserver(t *testing.T) {
	o := newObserver()
	now := time.Unix(2000, 0)
	o.now = func() time.Time { return now }
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "stow-backup-s1"}}
	o.onJob(job)
	now = now.Add(time.Second)
	o.onJob(job) // an update without a condition changes nothing
	if _, ok := o.lookup(o.jobDone)("ns/stow-backup-s1"); ok {
		t.Fatal("a running Job was recorded as done")
	}
	job = job.DeepCopy()
	job.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	o.onJob(job)
	if at, _ := o.lookup(o.jobAdded)("ns/stow-backup-s1"); !at.Equal(time.Unix(2000, 0)) {
		t.Fatalf("Job first seen at %v, want the first event", at)
	}
	if at, ok := o.lookup(o.jobDone)("ns/stow-backup-s1"); !ok || !at.Equal(time.Unix(2001, 0)) {
		t.Fatalf("Job done at %v, %v; want the event with the condition", at, ok)
	}
	s := &v1beta1.BackupSession{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s1"}}
	s.Status.Phase = v1beta1.BackupSessionRunning
	o.onSession(s)
	if _, _, ok := o.sessionDone("ns/s1"); ok {
		t.Fatal("a Running session was recorded as ended")
	}
	s = s.DeepCopy()
	s.Status.Phase, s.Status.Reason = v1beta1.BackupSessionFailed, "boom"
	o.onSession(s)
	if p, reason, ok := o.sessionDone("ns/s1"); !ok || p != v1beta1.BackupSessionFailed || reason != "boom" {
		t.Fatalf("sessionDone = %v %q %v", p, reason, ok)
	}
	for i, name := range []string{"stow-trigger-scale-0", "stow-trigger-scale-1", "stow-trigger-other"} {
		now = time.Unix(3000+int64(i), 0)
		o.onCronJob(&batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}})
	}
	o.onCronJob(&batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "elsewhere", Name: "stow-trigger-scale-9"}})
	if n, last := o.countCronJobs("ns/stow-trigger-scale-"); n != 2 || !last.Equal(time.Unix(3001, 0)) {
		t.Fatalf("countCronJobs = %d, %v; want 2 in ns, last at 3001", n, last)
	}
	if _, ok := o.latest(o.jobAdded, []string{"ns/stow-backup-s1", "ns/missing"}); ok {
		t.Fatal("latest reported a time with a key missing")
	}
}

func TestFindOperatorAndRSS(t *testing.T) {
	proc := t.TempDir()
	write := func(pid, file, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(proc, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, pid, file), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("1", "comm", "systemd\n")
	write("self", "comm", "stow-operator\n") // not a PID: ignored
	if _, err := findOperator(proc); err == nil {
		t.Fatal("found an operator where there is none")
	}
	write("42", "comm", "stow-operator\n")
	write("42", "status", "Name:\tstow-operator\nVmHWM:\t  153600 kB\nVmRSS:\t   51200 kB\n")
	pid, err := findOperator(proc)
	if err != nil || pid != 42 {
		t.Fatalf("findOperator = %d, %v; want 42", pid, err)
	}
	rss, hwm, err := rssMiB(proc, pid)
	if err != nil || rss != 50 || hwm != 150 {
		t.Fatalf("rssMiB = %v, %v, %v; want 50, 150", rss, hwm, err)
	}
	write("43", "comm", "stow-operator\n")
	if _, err := findOperator(proc); err == nil || !strings.Contains(err.Error(), "BENCH_OPERATOR_PID") {
		t.Fatalf("two operators: err = %v, want one asking for BENCH_OPERATOR_PID", err)
	}
	write("44", "status", "Name:\tx\nVmRSS:\tlots kB\nVmHWM:\t1 kB\n")
	if _, _, err := rssMiB(proc, 44); err == nil {
		t.Fatal("a malformed status parsed")
	}
}

func TestParallel(t *testing.T) {
	var ran atomic.Int32
	err := parallel(100, 8, func(i int) error {
		ran.Add(1)
		if i == 37 {
			return os.ErrInvalid
		}
		return nil
	})
	if err != os.ErrInvalid || ran.Load() != 100 {
		t.Fatalf("parallel = %v after %d calls; want the error after all 100", err, ran.Load())
	}
}

func TestParseQueueState(t *testing.T) {
	metrics := `# HELP workqueue_depth Current depth of workqueue.
workqueue_depth{name="backupconfiguration"} 3
workqueue_depth{name="backupsession"} 7
stow_reconcile_duration_seconds_bucket{controller="backupconfiguration",le="0.005"} 10
stow_reconcile_duration_seconds_count{controller="backupconfiguration"} 5000
stow_reconcile_duration_seconds_count{controller="repository"} 2
`
	st, err := parseQueueState([]byte(metrics))
	if err != nil || st.reconciles != 5000 || st.depth != 3 {
		t.Fatalf("parseQueueState = %+v, %v; want 5000 reconciles, depth 3", st, err)
	}
	if _, err := parseQueueState([]byte("up 1\n")); err == nil {
		t.Fatal("no error without the metrics")
	}
}

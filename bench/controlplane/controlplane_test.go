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
	"github.com/stowhq/stow/bench/internal/results"
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
		{"overhead needs restic", env("BENCH_CLUSTER", "1", "KUBECONFIG", "/k", "BENCH_CP_PARTS", "overhead"), "STOW_RESTIC"},
		{"growth sizes must increase", env("BENCH_CLUSTER", "1", "KUBECONFIG", "/k", "STOW_RESTIC", "/r", "BENCH_CP_PARTS", "growth", "BENCH_CP_GROWTH_GIB", "2,0.2"), "BENCH_CP_GROWTH_GIB"},
		{"defaults", env("BENCH_CLUSTER", "1", "KUBECONFIG", "/k", "STOW_RESTIC", "/r"), ""},
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
			if c.sessions != 50 || c.configs != 5000 || c.concurrent != 200 || c.clutter != 10000 || len(c.parts) != 7 || c.out != "bench/results.json" {
				t.Fatalf("defaults = %+v, want the issues' 50 sessions, 5000 configs, 200 concurrent, 10000 clutter objects, all parts", c)
			}
			if c.dataFiles != 10_000 || c.dataBytes != 276<<20 || c.overheadRuns != 5 || len(c.growthBytes) != 3 || c.growthBytes[2] != 8<<30 {
				t.Fatalf("defaults = %+v, want the issue's 10,000 files / 276 MiB, 5 runs, growth to 8 GiB", c)
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

// TestPodTimeline: each moment of a Job's pod is recorded once, when first
// seen, and the stages between them come out in the order they happened.
func TestPodTimeline(t *testing.T) {
	o := newObserver()
	t0 := time.Unix(5000, 0)
	now := t0
	o.now = func() time.Time { return now }
	h := &harness{obs: o}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", Labels: map[string]string{batchv1.JobNameLabel: "j"}},
		Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "step-0"}}, Containers: []corev1.Container{{Name: "step-1"}}}}
	at := func(d time.Duration, change func(p *corev1.Pod)) {
		now = t0.Add(d)
		pod = pod.DeepCopy()
		change(pod)
		o.onPod(pod)
	}
	o.onJob(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "j"}})
	at(100*time.Millisecond, func(*corev1.Pod) {})
	at(200*time.Millisecond, func(p *corev1.Pod) { p.Spec.NodeName = "n" })
	at(time.Second, func(p *corev1.Pod) {
		p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "step-0", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	})
	at(3*time.Second, func(p *corev1.Pod) {
		p.Status.InitContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}
	})
	// The last container was never seen running: its start is when it was seen exited.
	at(4*time.Second, func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "step-1", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}}}
		p.Status.Phase = corev1.PodSucceeded
	})
	at(5*time.Second, func(*corev1.Pod) {}) // a later update moves nothing
	got := h.stages(t0.Add(-time.Second), "ns/j", t0.Add(4500*time.Millisecond))
	want := []span{
		{"created -> Job", time.Second},
		{"Job -> pod", 100 * time.Millisecond},
		{"pod -> scheduled", 100 * time.Millisecond},
		{"scheduled -> step-0 started", 800 * time.Millisecond},
		{"step-0 started -> step-0 exited", 2 * time.Second},
		{"step-0 exited -> step-1 started", time.Second},
		{"step-1 started -> step-1 exited", 0},
		{"step-1 exited -> pod done", 0},
		{"pod done -> session done", 500 * time.Millisecond},
	}
	if len(got) != len(want) {
		t.Fatalf("stages = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("stage %d = %v, want %v", i, got[i], want[i])
		}
	}
	// A session that ended before the pod's phase said so (the operator
	// reads the containers' exits): the pod's end is not a stage of it.
	got = h.stages(t0.Add(-time.Second), "ns/j", t0.Add(3500*time.Millisecond))
	if last := got[len(got)-1]; last != (span{"step-0 exited -> session done", 500 * time.Millisecond}) {
		t.Errorf("last stage = %v, want step-0 exited -> session done, 0.5s", last)
	}
}

// TestFileSet: the set is as large as asked, the same for the same seed,
// and a change rewrites 1% of the files without changing their sizes.
func TestFileSet(t *testing.T) {
	dir := t.TempDir()
	set := newFileSet(dir, 300, 3<<20)
	if err := set.write(); err != nil {
		t.Fatal(err)
	}
	files, bytes, err := tally(dir)
	if err != nil || files != 300 || bytes != 3<<20 {
		t.Fatalf("tally = %d files, %d bytes, %v; want 300, %d", files, bytes, err, 3<<20)
	}
	read := func(i int) string {
		b, err := os.ReadFile(set.path(i))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	before := []string{read(0), read(1), read(100)}
	other := newFileSet(t.TempDir(), 300, 3<<20)
	if err := other.writeFile(1, 0); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(other.path(1)); string(b) != before[1] {
		t.Error("the same seed wrote a different file")
	}
	if err := set.change(1); err != nil {
		t.Fatal(err)
	}
	if read(0) == before[0] || read(100) == before[2] || read(1) != before[1] {
		t.Error("a change must rewrite every 100th file and only those")
	}
	if _, b, _ := tally(dir); b != bytes {
		t.Errorf("a change moved the set's size from %d to %d", bytes, b)
	}
	if err := emptyDir(dir); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := tally(dir); n != 0 {
		t.Errorf("emptyDir left %d files", n)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("emptyDir removed the directory itself: %v", err)
	}
}

func TestSummaryID(t *testing.T) {
	out := []byte(`{"message_type":"status","percent_done":1}
{"message_type":"summary","files_new":1,"snapshot_id":"abc123"}
`)
	if id, err := summaryID(out); err != nil || id != "abc123" {
		t.Fatalf("summaryID = %q, %v", id, err)
	}
	if _, err := summaryID([]byte(`{"message_type":"status"}`)); err == nil {
		t.Fatal("no summary, no error")
	}
}

// A part run again replaces the notes of its earlier run; notes of parts
// not run stay.
func TestMergePartsDropsSupersededNotes(t *testing.T) {
	old := &results.ControlPlane{Notes: []string{
		"scale: creating the 1000 BackupConfigurations takes 3.3 s of the convergence time (32 parallel clients)",
		"parts scale, restart measured at 14:50 UTC (BENCH_CP_PARTS)",
		"parts sessions, scale measured at 14:22 UTC (BENCH_CP_PARTS)",
		"parts clutter measured at 07:59 UTC (BENCH_CP_PARTS); load average at start 0.96 1.43 2.57, at end 5.13 3.84 3.31",
		"session overhead: 1 sessions had no observed Job, 0 no observed end of the Job's pod",
	}}
	cur := &results.ControlPlane{Notes: []string{"scale: creating the 5000 BackupConfigurations takes 25.6 s of the convergence time (32 parallel clients)"}}
	got := mergeParts(old, cur, []string{"scale", "restart"}).Notes
	want := []string{
		"scale: creating the 5000 BackupConfigurations takes 25.6 s of the convergence time (32 parallel clients)",
		"parts scale, restart measured at 00:00 UTC (BENCH_CP_PARTS); load average at start , at end ",
		"parts sessions, scale measured at 14:22 UTC (BENCH_CP_PARTS)",
		"parts clutter measured at 07:59 UTC (BENCH_CP_PARTS); load average at start 0.96 1.43 2.57, at end 5.13 3.84 3.31",
		"session overhead: 1 sessions had no observed Job, 0 no observed end of the Job's pod",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("notes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

package backupsession

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/executor"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/jobresult"
	"github.com/stowhq/stow/pkg/names"
	"github.com/stowhq/stow/pkg/restic"
)

func successStatuses() []corev1.ContainerStatus {
	n := int64(3)
	return []corev1.ContainerStatus{
		terminated("pvc-backup-0", 0, "Completed", encode(jobresult.Result{
			Step: "backup-pvc", Host: "host-0", Duration: "12s", RepositoryInitialized: bptr(true),
			Snapshots: []v1beta1.SnapshotStats{{Name: snapID, Path: "/stow-data", TotalSize: "1.000 MiB", FileStats: v1beta1.FileStats{TotalFiles: &n}}},
		})),
		terminated("update-status-1", 0, "Completed", encode(jobresult.Result{
			Step: v1beta1.FunctionUpdateStatus, Host: "host-0",
			Retention: &jobresult.RetentionResult{SnapshotsKept: 3, SnapshotsRemoved: 1, RemovedIDs: []string{oldSnap}},
			Integrity: bptr(true), TotalSize: "10.000 MiB", MetricsPushed: bptr(true), RepositorySnapshots: ptr.To(int64(5)),
		})),
	}
}

func TestBackupSucceeds(t *testing.T) {
	old := oldRecord()
	f := newFixture(t, readyBC("bc", "data"), repository("repo"), newSession("bc-1", "bc", t0, ""), old)
	f.sync("bc-1")

	s := f.session("bc-1")
	if s.Status.Phase != v1beta1.BackupSessionRunning {
		t.Fatalf("phase = %s, want Running; status %+v", s.Status.Phase, s.Status)
	}
	job := f.job(names.BackupJob("bc-1"))
	if job == nil {
		t.Fatal("backup Job not created")
	}
	if !internal.IsControlledBy(job, s.UID) || job.Annotations[v1beta1.AnnotationRepository] != ns+"/repo" ||
		job.Spec.Template.Annotations[v1beta1.AnnotationBackupSession] != "bc-1" ||
		job.Spec.Template.Labels[v1beta1.LabelManagedBy] != v1beta1.ManagedByStow {
		t.Fatalf("Job not marked as the session's: %+v", job.ObjectMeta)
	}
	tgt := s.Status.Targets[0]
	cond(t, tgt.Conditions, v1beta1.BackupExecutorEnsured, v1beta1.ConditionTrue)
	if tgt.TotalHosts == nil || *tgt.TotalHosts != 1 || tgt.Phase != v1beta1.TargetRunning {
		t.Fatalf("target = %+v", tgt)
	}
	if f.requeued[ns+"/bc-1"] != 5*time.Minute {
		t.Fatalf("watchdog requeue = %v, want the pending timeout", f.requeued[ns+"/bc-1"])
	}

	f.clock.Step(time.Minute)
	f.setPod("bc-1", corev1.PodSucceeded, t0, nil, successStatuses()...)
	f.sync("bc-1")

	s = f.session("bc-1")
	if s.Status.Phase != v1beta1.BackupSessionSucceeded {
		t.Fatalf("phase = %s (%s), want Succeeded", s.Status.Phase, s.Status.Reason)
	}
	if s.Status.Reason != "" || s.Status.SessionDuration != "1m0s" {
		t.Fatalf("reason %q duration %q", s.Status.Reason, s.Status.SessionDuration)
	}
	st := s.Status.Targets[0].Stats
	if len(st) != 1 || st[0].Hostname != "host-0" || st[0].Phase != v1beta1.HostSucceeded || len(st[0].Snapshots) != 1 || st[0].Duration != "12s" {
		t.Fatalf("stats = %+v", st)
	}
	for _, typ := range []string{v1beta1.BackendRepositoryInitialized, v1beta1.RetentionPolicyApplied, v1beta1.RepositoryIntegrityVerified,
		v1beta1.RepositoryMetricsPushed, v1beta1.BackupHistoryCleaned, v1beta1.MetricsPushed} {
		cond(t, s.Status.Conditions, typ, v1beta1.ConditionTrue)
	}
	if len(f.pusher.finished) != 1 || !f.pusher.finished[0] || f.pusher.phases[0] != v1beta1.BackupSessionSucceeded {
		t.Fatalf("pushed %v %v, want one success", f.pusher.finished, f.pusher.phases)
	}
	// The session writes no other object's status: the configuration's
	// and the Repository's controllers derive theirs from the session.
	repo, _ := f.stow.StowV1beta1().Repositories(ns).Get(context.Background(), "repo", metav1.GetOptions{})
	bc, _ := f.stow.StowV1beta1().BackupConfigurations(ns).Get(context.Background(), "bc", metav1.GetOptions{})
	if repo.Status.LastBackupTime != nil || repo.Status.SnapshotCount != 0 || bc.Status.LastSuccessTime != nil || bc.Status.SnapshotCount != nil {
		t.Fatalf("the session wrote the repository's %+v or the configuration's status %+v", repo.Status, bc.Status)
	}
	if kept, removed, _, ok := s.Retention(); !ok || kept != 3 || removed != 1 {
		t.Fatalf("retention read back from the session: kept %d removed %d ok %v; want 3, 1", kept, removed, ok)
	}
	// The snapshot taken is recorded; the one retention forgot is not any more.
	rec, err := f.stow.StowV1beta1().Snapshots(ns).Get(context.Background(), snapID[:16], metav1.GetOptions{})
	if err != nil || rec.Spec.ID != snapID || rec.Spec.Target.Name != "data" || rec.Spec.Invoker.Name != "bc" || rec.Spec.BackupSession != "bc-1" ||
		len(rec.Spec.Paths) != 1 || rec.Spec.Hostname != "host-0" || rec.Spec.Repository.Name != "repo" {
		t.Fatalf("snapshot record = %+v, %v", rec, err)
	}
	if _, err := f.stow.StowV1beta1().Snapshots(ns).Get(context.Background(), oldSnap, metav1.GetOptions{}); err == nil {
		t.Fatal("the record of a forgotten snapshot was kept")
	}
	if ev := f.events(); !hasEvent(ev, EventHostBackupSucceeded) || !hasEvent(ev, EventSucceeded) {
		t.Fatalf("events = %v", ev)
	}

	// A final session is left alone.
	pushes := len(f.pusher.finished)
	f.sync("bc-1")
	if len(f.pusher.finished) != pushes {
		t.Fatal("a final session was pushed again")
	}
}

func TestMetricsPushFailureFailsSession(t *testing.T) {
	f := newFixture(t, readyBC("bc", "data"), repository("repo"), newSession("bc-1", "bc", t0, ""))
	f.pusher.err = errors.New("pushgateway down")
	f.sync("bc-1")
	f.setPod("bc-1", corev1.PodSucceeded, t0, nil, successStatuses()...)
	f.sync("bc-1")
	s := f.session("bc-1")
	cond(t, s.Status.Conditions, v1beta1.MetricsPushed, v1beta1.ConditionFalse)
	if s.Status.Phase != v1beta1.BackupSessionFailed {
		t.Fatalf("phase = %s", s.Status.Phase)
	}
	contains(t, "reason", s.Status.Reason, "pushgateway down")
}

func TestSkipRules(t *testing.T) {
	running := newSession("bc-0", "bc", t0.Add(-time.Minute), v1beta1.BackupSessionRunning)
	pausing := &v1beta1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Name: "rs1", Namespace: ns},
		Status:     v1beta1.RestoreSessionStatus{Phase: v1beta1.RestoreRunning, PausedBackups: []string{"bc"}},
	}
	notReady := readyBC("bc", "data", func(bc *v1beta1.BackupConfiguration) { bc.Status.Phase = v1beta1.BackupInvokerNotReady })
	startedSession, startedJob := started("bc-1", "bc", t0)
	for _, tc := range []struct {
		name    string
		objs    []runtime.Object
		session *v1beta1.BackupSession
		want    v1beta1.BackupSessionPhase
		reason  string
	}{
		{"bc not ready", []runtime.Object{notReady}, newSession("bc-1", "bc", t0, ""), v1beta1.BackupSessionSkipped, "is not ready"},
		{"another session running", []runtime.Object{readyBC("bc", "data"), running}, newSession("bc-1", "bc", t0, ""), v1beta1.BackupSessionSkipped, `Previous BackupSession: bc-0 is "Running"`},
		{"paused by restore", []runtime.Object{readyBC("bc", "data"), pausing}, newSession("bc-1", "bc", t0, ""), v1beta1.BackupSessionSkipped, "paused by restore rs1"},
		// Stash gap 10.11: a running session is not skipped when the BC turns NotReady.
		{"running session of a not-ready bc", []runtime.Object{notReady, startedJob}, startedSession, v1beta1.BackupSessionRunning, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, append(tc.objs, repository("repo"), tc.session)...)
			f.sync(tc.session.Name)
			s := f.session(tc.session.Name)
			if s.Status.Phase != tc.want {
				t.Fatalf("phase = %s (%s), want %s", s.Status.Phase, s.Status.Reason, tc.want)
			}
			if tc.want != v1beta1.BackupSessionSkipped {
				if len(f.pusher.skipped) != 0 {
					t.Fatal("skipped metric pushed for a session that was not skipped")
				}
				return
			}
			contains(t, "reason", s.Status.Reason, tc.reason)
			cond(t, s.Status.Conditions, v1beta1.BackupSkipped, v1beta1.ConditionTrue)
			cond(t, s.Status.Conditions, v1beta1.MetricsPushed, v1beta1.ConditionTrue)
			cond(t, s.Status.Conditions, v1beta1.BackupHistoryCleaned, v1beta1.ConditionTrue)
			if len(f.pusher.skipped) != 1 || len(f.pusher.finished) != 0 {
				t.Fatalf("skipped pushes %v, finished pushes %v", f.pusher.skipped, f.pusher.finished)
			}
			if f.built != 0 || f.job(names.BackupJob(tc.session.Name)) != nil {
				t.Fatal("a skipped session created a Job")
			}
		})
	}
}

func TestInvokerOrTaskMissingFails(t *testing.T) {
	for _, tc := range []struct {
		name   string
		objs   []runtime.Object
		reason string
	}{
		{"bc missing", nil, "BackupConfiguration app/bc not found"},
		{"task missing", []runtime.Object{readyBC("bc", "data", func(bc *v1beta1.BackupConfiguration) { bc.Spec.Task.Name = "nope" })}, `Task "nope" not found`},
		{"repository missing", []runtime.Object{readyBC("bc", "data", func(bc *v1beta1.BackupConfiguration) { bc.Spec.Repository.Name = "gone" })}, "Repository app/gone not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, append(tc.objs, repository("repo"), newSession("bc-1", "bc", t0, ""))...)
			f.sync("bc-1")
			s := f.session("bc-1")
			if s.Status.Phase != v1beta1.BackupSessionFailed {
				t.Fatalf("phase = %s, want Failed", s.Status.Phase)
			}
			contains(t, "reason", s.Status.Reason, tc.reason)
			if f.job(names.BackupJob("bc-1")) != nil {
				t.Fatal("a Job was created")
			}
			if len(s.Status.Targets) > 0 {
				cond(t, s.Status.Targets[0].Conditions, v1beta1.BackupExecutorEnsured, v1beta1.ConditionFalse)
				if len(f.pusher.finished) != 1 || f.pusher.finished[0] {
					t.Fatalf("pushed %v, want one failure", f.pusher.finished)
				}
			}
		})
	}
}

// Work that needs the repository alone (here a Job of another namespace on
// the same bucket, through another Repository object) holds backups back;
// once it ends, backups of different PVCs run side by side.
const (
	snapID  = "4bba301e9f0c2d5e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f"
	oldSnap = "00aa11bb22cc33dd"
)

func TestRepositorySerialization(t *testing.T) {
	location := restic.LocationKey(repository("repo").Spec.Backend, ns, "repo")
	holder := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{
		Name: "stow-maintain-r1", Namespace: "other",
		Labels: map[string]string{v1beta1.LabelManagedBy: v1beta1.ManagedByStow},
		Annotations: map[string]string{v1beta1.AnnotationRepository: "other/repo-alias",
			v1beta1.AnnotationLocation: location, v1beta1.AnnotationLockMode: string(executor.Exclusive)},
	}}
	second := repository("repo2") // another object on the same bucket and prefix
	bc2 := readyBC("bc2", "data2", func(bc *v1beta1.BackupConfiguration) { bc.Spec.Repository.Name = "repo2" })
	f := newFixture(t, readyBC("bc", "data"), bc2, repository("repo"), second, holder,
		newSession("bc-1", "bc", t0, ""), newSession("bc2-1", "bc2", t0, ""))
	for _, name := range []string{"bc-1", "bc2-1"} {
		f.sync(name)
		s := f.session(name)
		if s.Status.Phase != v1beta1.BackupSessionPending || f.built != 0 {
			t.Fatalf("%s phase = %s, built %d: want Pending with no Job", name, s.Status.Phase, f.built)
		}
		c := cond(t, s.Status.Conditions, v1beta1.ExecutorWaiting, v1beta1.ConditionTrue)
		if c.Reason != v1beta1.RepositoryInUse {
			t.Fatalf("reason = %s", c.Reason)
		}
		contains(t, "waiting message", c.Message, "other/stow-maintain-r1")
		if f.requeued[ns+"/"+name] != 5*time.Second {
			t.Fatalf("requeue = %v", f.requeued[ns+"/"+name])
		}
	}

	// The holder finishes: both backups start, side by side.
	holder.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	if _, err := f.kube.BatchV1().Jobs("other").Update(context.Background(), holder, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.resync()
	for _, name := range []string{"bc-1", "bc2-1"} {
		if err := f.syncErr(name); err != nil {
			t.Fatal(err)
		}
	}
	f.resync()
	for _, name := range []string{"bc-1", "bc2-1"} {
		if s := f.session(name); s.Status.Phase != v1beta1.BackupSessionRunning || v1beta1.HasCondition(s.Status.Conditions, v1beta1.ExecutorWaiting) {
			t.Fatalf("%s phase = %s, conditions %+v", name, s.Status.Phase, s.Status.Conditions)
		}
		j := f.job(names.BackupJob(name))
		if j == nil || j.Annotations[v1beta1.AnnotationLocation] != location || j.Annotations[v1beta1.AnnotationLockMode] != string(executor.Shared) {
			t.Fatalf("Job of %s: %+v", name, j)
		}
	}
}

func TestTargetSerializationAcrossConfigurations(t *testing.T) {
	f := newFixture(t, readyBC("a", "data"), readyBC("b", "data"), repository("repo"),
		newSession("a-1", "a", t0, v1beta1.BackupSessionPending), newSession("b-1", "b", t0.Add(time.Second), ""))
	f.sync("b-1")
	s := f.session("b-1")
	c := cond(t, s.Status.Conditions, v1beta1.ExecutorWaiting, v1beta1.ConditionTrue)
	if c.Reason != v1beta1.TargetInUse || s.Status.Phase != v1beta1.BackupSessionPending {
		t.Fatalf("b-1: %s %+v", s.Status.Phase, c)
	}
	contains(t, "message", c.Message, "BackupSession a-1")
	f.sync("a-1")
	if s := f.session("a-1"); s.Status.Phase != v1beta1.BackupSessionRunning {
		t.Fatalf("a-1 (older) phase = %s, want Running", s.Status.Phase)
	}
}

func TestWatchdog(t *testing.T) {
	unschedulable := []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/1 nodes are available: persistentvolumeclaim \"data\" not found"}}
	for _, tc := range []struct {
		name       string
		phase      corev1.PodPhase
		podConds   []corev1.PodCondition
		statuses   []corev1.ContainerStatus
		advance    time.Duration
		deleteJob  bool
		deletePod  bool
		wantPhase  v1beta1.BackupSessionPhase
		disrupted  string // BackupDisrupted reason, if any
		reason     string // substring of status.reason
		jobDeleted bool
		requeue    time.Duration
	}{
		{name: "pending too long", phase: corev1.PodPending, podConds: unschedulable, advance: 6 * time.Minute,
			wantPhase: v1beta1.BackupSessionFailed, disrupted: v1beta1.PodHasBeenInPendingStateForLongerThanExpected,
			reason: `persistentvolumeclaim "data" not found`, jobDeleted: true},
		{name: "image pull", phase: corev1.PodPending, statuses: []corev1.ContainerStatus{waiting("pvc-backup-0", "ImagePullBackOff", "Back-off pulling image \"stow:x\"")},
			advance: 5 * time.Minute, wantPhase: v1beta1.BackupSessionFailed, disrupted: v1beta1.PodHasBeenInPendingStateForLongerThanExpected,
			reason: "ImagePullBackOff", jobDeleted: true},
		{name: "pending within threshold", phase: corev1.PodPending, podConds: unschedulable, advance: 2 * time.Minute,
			wantPhase: v1beta1.BackupSessionRunning, requeue: 3 * time.Minute},
		{name: "step failed with a result", phase: corev1.PodFailed, statuses: []corev1.ContainerStatus{
			terminated("pvc-backup-0", 1, "Error", encode(jobresult.Result{Step: "backup-pvc", Host: "host-0", Error: "restic: 2 files could not be read", RepositoryInitialized: bptr(true)})),
			waiting("update-status-1", "PodInitializing", "")},
			wantPhase: v1beta1.BackupSessionFailed, reason: "host host-0: restic: 2 files could not be read"},
		{name: "OOM killed", phase: corev1.PodFailed, statuses: []corev1.ContainerStatus{terminated("pvc-backup-0", 137, "OOMKilled", "")},
			wantPhase: v1beta1.BackupSessionFailed, reason: "OOMKilled"},
		{name: "raw log tail", phase: corev1.PodFailed, statuses: []corev1.ContainerStatus{terminated("pvc-backup-0", 2, "Error", "starting\nFatal: wrong password or no key found\n")},
			wantPhase: v1beta1.BackupSessionFailed, reason: "Fatal: wrong password"},
		{name: "job deleted", deleteJob: true, wantPhase: v1beta1.BackupSessionFailed, disrupted: v1beta1.ExecutorDeleted, reason: "was deleted before it reported"},
		{name: "pod deleted", phase: corev1.PodFailed, deletePod: true, wantPhase: v1beta1.BackupSessionFailed, disrupted: v1beta1.ExecutorDeleted, reason: "deleted before it reported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, readyBC("bc", "data"), repository("repo"), newSession("bc-1", "bc", t0, ""))
			f.sync("bc-1")
			jobName := names.BackupJob("bc-1")
			ctx := context.Background()
			switch {
			case tc.deleteJob:
				_ = f.kube.BatchV1().Jobs(ns).Delete(ctx, jobName, metav1.DeleteOptions{})
				f.resync()
			default:
				f.setPod("bc-1", tc.phase, t0, tc.podConds, tc.statuses...)
				if tc.deletePod {
					_ = f.kube.CoreV1().Pods(ns).Delete(ctx, jobName+"-abcde", metav1.DeleteOptions{})
					f.resync()
				}
			}
			f.clock.Step(tc.advance)
			delete(f.requeued, ns+"/bc-1")
			f.sync("bc-1")
			s := f.session("bc-1")
			if s.Status.Phase != tc.wantPhase {
				t.Fatalf("phase = %s (%s), want %s", s.Status.Phase, s.Status.Reason, tc.wantPhase)
			}
			if tc.disrupted != "" {
				c := cond(t, s.Status.Targets[0].Conditions, v1beta1.BackupDisrupted, v1beta1.ConditionTrue)
				if c.Reason != tc.disrupted {
					t.Fatalf("BackupDisrupted reason = %s, want %s", c.Reason, tc.disrupted)
				}
			}
			if tc.reason != "" {
				contains(t, "reason", s.Status.Reason, tc.reason)
			}
			if tc.jobDeleted && f.job(jobName) != nil {
				t.Fatal("the Job was not stopped")
			}
			if tc.requeue != 0 && f.requeued[ns+"/bc-1"] != tc.requeue {
				t.Fatalf("requeue = %v, want %v", f.requeued[ns+"/bc-1"], tc.requeue)
			}
			if tc.wantPhase == v1beta1.BackupSessionFailed && (len(f.pusher.finished) != 1 || f.pusher.finished[0]) {
				t.Fatalf("pushed %v, want one failure", f.pusher.finished)
			}
			// A later session is not blocked by the dead one.
			if tc.wantPhase == v1beta1.BackupSessionFailed {
				if _, err := f.stow.StowV1beta1().BackupSessions(ns).Create(ctx, newSession("bc-2", "bc", f.clock.Now(), ""), metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				if j := f.job(jobName); j != nil { // a failed Job is not active any more
					j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue}}
					_, _ = f.kube.BatchV1().Jobs(ns).Update(ctx, j, metav1.UpdateOptions{})
				}
				f.resync()
				f.sync("bc-2")
				if p := f.session("bc-2").Status.Phase; p != v1beta1.BackupSessionRunning {
					t.Fatalf("next session phase = %s, want Running", p)
				}
			}
		})
	}
}

func TestDeadline(t *testing.T) {
	bc := readyBC("bc", "data", func(bc *v1beta1.BackupConfiguration) { bc.Spec.TimeOut = &v1beta1.Duration{Duration: time.Hour} })
	f := newFixture(t, bc, repository("repo"), newSession("bc-1", "bc", t0, ""))
	f.sync("bc-1")
	f.setPod("bc-1", corev1.PodRunning, t0, nil)
	f.clock.Step(10 * time.Minute)
	f.sync("bc-1")
	s := f.session("bc-1")
	if s.Status.SessionDeadline == nil || !s.Status.SessionDeadline.Time.Equal(t0.Add(time.Hour)) {
		t.Fatalf("sessionDeadline = %v", s.Status.SessionDeadline)
	}
	if got := f.requeued[ns+"/bc-1"]; got != 50*time.Minute {
		t.Fatalf("requeue = %v, want 50m (the deadline)", got)
	}
	f.clock.Step(50 * time.Minute)
	f.sync("bc-1")
	s = f.session("bc-1")
	cond(t, s.Status.Conditions, v1beta1.DeadlineExceeded, v1beta1.ConditionTrue)
	if s.Status.Phase != v1beta1.BackupSessionFailed {
		t.Fatalf("phase = %s", s.Status.Phase)
	}
	contains(t, "reason", s.Status.Reason, "did not complete within timeOut 1h0m0s")
	if f.job(names.BackupJob("bc-1")) != nil {
		t.Fatal("the Job was not stopped at the deadline")
	}
	if len(f.pusher.finished) != 1 || f.pusher.finished[0] {
		t.Fatalf("pushed %v", f.pusher.finished)
	}
}

func TestHistoryCleanup(t *testing.T) {
	mk := func(name string, age time.Duration, p v1beta1.BackupSessionPhase) *v1beta1.BackupSession {
		return newSession(name, "bc", t0.Add(-age), p)
	}
	for _, tc := range []struct {
		name    string
		limit   int32
		skip    bool // the current session is skipped
		deleted []string
		kept    []string
	}{
		{name: "limit 1 keeps the current", limit: 1, deleted: []string{"s-succeeded", "s-failed", "s-skipped"}, kept: []string{"s-running", "s-pending", "other-bc"}},
		{name: "skipped current keeps the last completed", limit: 1, skip: true, deleted: []string{"s-succeeded", "s-skipped"}, kept: []string{"s-failed", "s-running", "s-pending"}},
		// Pending and Running sessions count toward the limit but are never deleted.
		{name: "limit 3", limit: 3, deleted: []string{"s-succeeded", "s-failed"}, kept: []string{"s-skipped", "s-running", "s-pending"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bc := readyBC("bc", "data", func(bc *v1beta1.BackupConfiguration) { bc.Spec.BackupHistoryLimit = &tc.limit })
			if tc.skip {
				bc.Status.Phase = v1beta1.BackupInvokerNotReady
			}
			// "current" already runs unless it is to be skipped (a Running
			// session of the same BC would skip a new one).
			cur, curJob := started("current", "bc", t0)
			if tc.skip {
				cur = newSession("current", "bc", t0, "")
			}
			other := newSession("other-bc", "bc2", t0.Add(-10*time.Hour), v1beta1.BackupSessionSucceeded)
			f := newFixture(t, bc, repository("repo"), other,
				mk("s-succeeded", 6*time.Hour, v1beta1.BackupSessionSucceeded),
				mk("s-running", 5*time.Hour, v1beta1.BackupSessionRunning),
				mk("s-failed", 4*time.Hour, v1beta1.BackupSessionFailed),
				mk("s-skipped", 3*time.Hour, v1beta1.BackupSessionSkipped),
				mk("s-pending", 2*time.Hour, v1beta1.BackupSessionPending),
				cur, curJob)
			if !tc.skip {
				f.setPod("current", corev1.PodSucceeded, t0, nil, successStatuses()...)
			}
			f.sync("current")
			cur = f.session("current")
			if !cur.Status.Phase.IsFinal() {
				t.Fatalf("current phase = %s", cur.Status.Phase)
			}
			cond(t, cur.Status.Conditions, v1beta1.BackupHistoryCleaned, v1beta1.ConditionTrue)
			for _, n := range tc.deleted {
				if _, err := f.stow.StowV1beta1().BackupSessions(ns).Get(context.Background(), n, metav1.GetOptions{}); err == nil {
					t.Errorf("%s was kept, want deleted", n)
				}
			}
			for _, n := range append(tc.kept, "current") {
				if _, err := f.stow.StowV1beta1().BackupSessions(ns).Get(context.Background(), n, metav1.GetOptions{}); err != nil {
					t.Errorf("%s was deleted, want kept", n)
				}
			}
		})
	}
}

func TestRetryWithDelay(t *testing.T) {
	bc := readyBC("bc", "data", func(bc *v1beta1.BackupConfiguration) {
		bc.Spec.RetryConfig = &v1beta1.RetryConfig{MaxRetry: 2, Delay: v1beta1.Duration{Duration: 10 * time.Minute}}
	})
	failed := newSession("bc-1", "bc", t0.Add(-time.Hour), v1beta1.BackupSessionFailed)
	failed.Spec.RetryLeft = 2
	f := newFixture(t, bc, repository("repo"), failed)
	f.sync("bc-1")
	s := f.session("bc-1")
	if s.Status.NextRetry == nil || !s.Status.NextRetry.Time.Equal(t0.Add(10*time.Minute)) || s.Status.Retried != nil {
		t.Fatalf("nextRetry %v retried %v", s.Status.NextRetry, s.Status.Retried)
	}
	if f.requeued[ns+"/bc-1"] != 10*time.Minute {
		t.Fatalf("requeue = %v", f.requeued[ns+"/bc-1"])
	}
	list, _ := f.stow.StowV1beta1().BackupSessions(ns).List(context.Background(), metav1.ListOptions{})
	if len(list.Items) != 1 {
		t.Fatal("retry created before its delay")
	}

	f.clock.Step(10 * time.Minute)
	f.sync("bc-1")
	f.sync("bc-1") // idempotent: no second retry
	retryName := names.BackupSession("bc", f.clock.Now().Unix())
	next := f.session(retryName)
	if next.Spec.RetryLeft != 1 || next.Spec.Invoker.Name != "bc" || next.Annotations[v1beta1.AnnotationRetryOf] != "bc-1" ||
		next.Labels[v1beta1.LabelInvokerName] != "bc" || metav1.GetControllerOf(next) == nil {
		t.Fatalf("retry session = %+v", next.ObjectMeta)
	}
	if s := f.session("bc-1"); s.Status.Retried == nil || !*s.Status.Retried {
		t.Fatal("retried not set")
	}
	list, _ = f.stow.StowV1beta1().BackupSessions(ns).List(context.Background(), metav1.ListOptions{})
	if len(list.Items) != 2 {
		t.Fatalf("%d sessions, want 2", len(list.Items))
	}
}

// A sync on a stale cache (the session's status write not seen yet) finds the
// Job it created before: it counts as created, with no second Job and no
// second BackupJobCreated event.
func TestStaleCacheDoesNotRecreateJob(t *testing.T) {
	s := newSession("bc-1", "bc", t0, "")
	_, job := started("bc-1", "bc", t0)
	f := newFixture(t, readyBC("bc", "data"), repository("repo"), s, job)
	f.sync("bc-1")
	got := f.session("bc-1")
	cond(t, got.Status.Targets[0].Conditions, v1beta1.BackupExecutorEnsured, v1beta1.ConditionTrue)
	if ev := f.events(); hasEvent(ev, EventJobCreated) {
		t.Errorf("an existing Job was reported as created again: %v", ev)
	}
	jobs, err := f.kube.BatchV1().Jobs(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil || len(jobs.Items) != 1 {
		t.Fatalf("jobs = %d (%v); want 1", len(jobs.Items), err)
	}
}

// TestSnapshotRecords: one record per snapshot (of however many paths),
// none left for those retention forgot; a session handled twice makes
// them once.
func TestSnapshotRecords(t *testing.T) {
	old := oldRecord()
	bc := readyBC("bc", "data")
	f := newFixture(t, repository("repo"), bc, old)
	s := newSession("bc-1", "bc", t0, "")
	m := merged{Result: jobresult.Result{
		Snapshots: []v1beta1.SnapshotStats{{Name: snapID, Path: "/a"}, {Name: snapID, Path: "/b"}}, // one snapshot of two paths
		Retention: &jobresult.RetentionResult{SnapshotsKept: 2, SnapshotsRemoved: 2, RemovedIDs: []string{oldSnap, "never-recorded"}},
	}}
	for round := 1; round <= 2; round++ {
		if err := f.c.recordSnapshots(context.Background(), s, bc, m, t0); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	recs, err := f.stow.StowV1beta1().Snapshots(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil || len(recs.Items) != 1 || recs.Items[0].Name != snapID[:16] || strings.Join(recs.Items[0].Spec.Paths, ",") != "/a,/b" {
		t.Fatalf("records: %+v %v; want the one of a snapshot of two paths", recs, err)
	}
}

// TestFirstBackupRunsAlone: until a backup through the Repository
// succeeded, a backup may create the repository, so it holds the location
// alone; two concurrent creations would leave a key that opens nothing.
func TestFirstBackupRunsAlone(t *testing.T) {
	bc2 := readyBC("bc2", "data2")
	f := newFixture(t, readyBC("bc", "data"), bc2, newRepository("repo"),
		newSession("bc-1", "bc", t0, ""), newSession("bc2-1", "bc2", t0.Add(time.Second), ""))
	f.sync("bc-1")
	j := f.job(names.BackupJob("bc-1"))
	if j == nil || j.Annotations[v1beta1.AnnotationLockMode] != string(executor.Exclusive) {
		t.Fatalf("first backup Job: %+v", j)
	}
	f.resync()
	f.sync("bc2-1")
	s := f.session("bc2-1")
	if c := cond(t, s.Status.Conditions, v1beta1.ExecutorWaiting, v1beta1.ConditionTrue); c.Reason != v1beta1.RepositoryInUse || f.job(names.BackupJob("bc2-1")) != nil {
		t.Fatalf("second backup while the first may create the repository: %+v", c)
	}
}

// Every failure path reaches the metrics: a backup step that failed (the
// init container; update-status never ran) leaves a Failed host in what the
// operator pushes, and a failed check reaches the repository push as
// integrity false (issue 17).
func TestFailuresReachTheMetrics(t *testing.T) {
	f := newFixture(t, readyBC("bc", "data"), repository("repo"), newSession("bc-1", "bc", t0, ""))
	f.sync("bc-1")
	f.setPod("bc-1", corev1.PodFailed, t0, nil,
		terminated("pvc-backup-0", 1, "Error", encode(jobresult.Result{Step: "backup-pvc", Host: "host-0", Error: "restic backup: exit status 1: Fatal: unable to open repository"})))
	f.sync("bc-1")
	if len(f.pusher.sessions) != 1 || f.pusher.finished[0] {
		t.Fatalf("pushed %v, want one failure", f.pusher.finished)
	}
	st := f.pusher.sessions[0].Status.Targets[0].Stats
	if len(st) != 1 || st[0].Hostname != "host-0" || st[0].Phase != v1beta1.HostFailed || !strings.Contains(st[0].Error, "unable to open repository") {
		t.Fatalf("pushed host stats %+v, want host-0 Failed with the error", st)
	}

	f = newFixture(t, readyBC("bc", "data"), repository("repo"), newSession("bc-2", "bc", t0, ""))
	f.sync("bc-2")
	statuses := successStatuses()
	statuses[1] = terminated("update-status-1", 1, "Error", encode(jobresult.Result{
		Step: v1beta1.FunctionUpdateStatus, Host: "host-0", Error: "integrity check: repository contains errors",
		Retention: &jobresult.RetentionResult{SnapshotsKept: 3}, Integrity: bptr(false),
	}))
	f.setPod("bc-2", corev1.PodFailed, t0, nil, statuses...)
	f.sync("bc-2")
	if len(f.pusher.repo) != 1 || f.pusher.repo[0].Integrity == nil || *f.pusher.repo[0].Integrity {
		t.Fatalf("repository pushes %+v, want one with integrity false", f.pusher.repo)
	}
	s := f.session("bc-2")
	cond(t, s.Status.Conditions, v1beta1.RepositoryIntegrityVerified, v1beta1.ConditionFalse)
	cond(t, s.Status.Conditions, v1beta1.RepositoryMetricsPushed, v1beta1.ConditionTrue)
	if s.Status.Phase != v1beta1.BackupSessionFailed {
		t.Fatalf("phase %s", s.Status.Phase)
	}
}

// oldRecord is the record of configuration bc's snapshot oldSnap, as the
// operator wrote it.
func oldRecord() *v1beta1.Snapshot {
	return &v1beta1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: oldSnap, Namespace: ns},
		Spec: v1beta1.SnapshotSpec{ID: oldSnap + strings.Repeat("0", 48), Repository: v1beta1.ObjectRef{Name: "repo"},
			Invoker: v1beta1.BackupInvokerRef{APIGroup: v1beta1.GroupName, Kind: v1beta1.KindBackupConfiguration, Name: "bc"},
			Target:  v1beta1.TargetRef{Kind: v1beta1.KindPersistentVolumeClaim, Name: "data"}}}
}

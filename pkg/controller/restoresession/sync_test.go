package restoresession

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/executor"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/controller/internal/controllertest"
	"github.com/stowhq/stow/pkg/jobenv"
	"github.com/stowhq/stow/pkg/jobresult"
	"github.com/stowhq/stow/pkg/names"
	"github.com/stowhq/stow/pkg/resolve"
	"github.com/stowhq/stow/pkg/restic"
)

func restoreOK() corev1.ContainerStatus {
	return terminated("pvc-restore-0", 0, "Completed", encode(jobresult.Result{Step: "restore-pvc", Host: "host-0", Duration: "4s"}))
}

// syncRestore syncs the restore several times (publishing a pause takes one sync).
func (f *fixture) syncRestore(name string, times int) {
	for i := 0; i < times; i++ {
		f.sync(name)
	}
}

func TestRestoreSucceedsAndPausesBackups(t *testing.T) {
	rs := newRestore("rs", func(rs *v1beta1.RestoreSession) {
		// Deprecated spec.rules move to target.rules; no rules at all means
		// "latest snapshot of this host", resolved by the resolver.
		rs.Spec.Rules = []v1beta1.Rule{{Snapshots: []string{"latest"}}}
	})
	f := newFixture(t, repository("repo"), secret(), pvc("data"), backupOf("nightly", "data"), backupOf("other", "logs"), rs)
	f.sync("rs")
	got := f.restore("rs")
	if !slices.Contains(got.Finalizers, v1beta1.Finalizer) {
		t.Fatal("finalizer not added")
	}
	if !slices.Equal(got.Status.PausedBackups, []string{"nightly"}) {
		t.Fatalf("pausedBackups = %v, want [nightly]", got.Status.PausedBackups)
	}
	if f.job(names.RestoreJob("rs", 0)) != nil {
		t.Fatal("Job created before the pause was published")
	}
	f.sync("rs")
	got = f.restore("rs")
	job := f.job(names.RestoreJob("rs", 0))
	if job == nil || !internal.IsControlledBy(job, got.UID) || job.Spec.Template.Annotations[v1beta1.AnnotationRestoreSession] != "rs" {
		t.Fatalf("restore Job = %+v", job)
	}
	if got.Status.Phase != v1beta1.RestoreRunning || got.Status.TotalHosts == nil || *got.Status.TotalHosts != 1 {
		t.Fatalf("phase %s totalHosts %v", got.Status.Phase, got.Status.TotalHosts)
	}
	for _, typ := range []string{v1beta1.ValidationPassed, v1beta1.RepositoryFound, v1beta1.BackendSecretFound, v1beta1.RestoreTargetFound, v1beta1.RestoreExecutorEnsured} {
		cond(t, got.Status.Conditions, typ, v1beta1.ConditionTrue)
	}
	b := f.lastBuilt
	if b.Spec.Task.Name != v1beta1.TaskPVCRestore || len(b.Spec.Target.Rules) != 1 || b.Spec.Repository.Namespace != ns {
		t.Fatalf("builder did not get the defaulted session: %+v", b.Spec)
	}

	f.clock.Step(30 * time.Second)
	f.setPod(job.Name, corev1.PodSucceeded, t0, nil, restoreOK())
	f.sync("rs")
	got = f.restore("rs")
	if got.Status.Phase != v1beta1.RestoreSucceeded {
		t.Fatalf("phase = %s (%s)", got.Status.Phase, got.Status.Reason)
	}
	if len(got.Status.PausedBackups) != 0 {
		t.Fatalf("pausedBackups not cleared: %v", got.Status.PausedBackups)
	}
	if len(got.Status.Stats) != 1 || got.Status.Stats[0].Phase != v1beta1.HostSucceeded || got.Status.Stats[0].Duration != "4s" {
		t.Fatalf("stats = %+v", got.Status.Stats)
	}
	cond(t, got.Status.Conditions, v1beta1.MetricsPushed, v1beta1.ConditionTrue)
	if !slices.Equal(f.pusher.restores, []bool{true}) || got.Status.SessionDuration != "30s" {
		t.Fatalf("pushed %v duration %s", f.pusher.restores, got.Status.SessionDuration)
	}
	if ev := f.events(); !hasEvent(ev, EventHostRestoreSucceeded) {
		t.Fatalf("events = %v", ev)
	}

	// The final session releases its finished Job (its pod held the PVC):
	// the TTL controller deletes it at once; results stay in the status.
	f.sync("rs")
	if j := f.job(job.Name); j == nil || j.Spec.TTLSecondsAfterFinished == nil || *j.Spec.TTLSecondsAfterFinished != 0 {
		t.Fatalf("finished restore Job not released: %+v", j)
	}
	if got := f.restore("rs"); got.Status.Phase != v1beta1.RestoreSucceeded || len(got.Status.Stats) != 1 {
		t.Fatalf("release changed the result: %s %+v", got.Status.Phase, got.Status.Stats)
	}
	if ev := f.events(); !hasEvent(ev, "JobsReleased") {
		t.Fatalf("events = %v", ev)
	}
}

func TestRestoreWaits(t *testing.T) {
	holder := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "stow-backup-x", Namespace: ns,
		Labels: map[string]string{v1beta1.LabelManagedBy: v1beta1.ManagedByStow},
		Annotations: map[string]string{v1beta1.AnnotationRepository: ns + "/repo",
			v1beta1.AnnotationLocation: restic.LocationKey(repository("repo").Spec.Backend, ns, "repo"),
			v1beta1.AnnotationLockMode: string(executor.Exclusive)}}}
	for _, tc := range []struct {
		name  string
		objs  []runtime.Object
		cond  string
		msg   string
		phase v1beta1.RestorePhase
	}{
		{"repository missing", []runtime.Object{secret(), pvc("data")}, v1beta1.RepositoryFound, "Repository app/repo not found", v1beta1.RestorePending},
		{"secret missing", []runtime.Object{repository("repo"), pvc("data")}, v1beta1.BackendSecretFound, "Secret app/creds not found", v1beta1.RestorePending},
		{"pvc missing", []runtime.Object{repository("repo"), secret()}, v1beta1.RestoreTargetFound, "PVC app/data not found", v1beta1.RestorePending},
		{"repository busy", []runtime.Object{repository("repo"), secret(), pvc("data"), holder}, v1beta1.ExecutorWaiting, "in use by Job app/stow-backup-x", v1beta1.RestorePending},
		{"backup running", []runtime.Object{repository("repo"), secret(), pvc("data"), backupOf("nightly", "data"), runningBackup("nightly-1", "nightly")},
			v1beta1.ExecutorWaiting, "BackupSession nightly-1 is backing up the target", v1beta1.RestorePending},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, append(tc.objs, newRestore("rs"))...)
			f.syncRestore("rs", 2)
			got := f.restore("rs")
			if got.Status.Phase != tc.phase || f.job(names.RestoreJob("rs", 0)) != nil {
				t.Fatalf("phase = %s, Job %v", got.Status.Phase, f.job(names.RestoreJob("rs", 0)) != nil)
			}
			want := v1beta1.ConditionFalse
			if tc.cond == v1beta1.ExecutorWaiting {
				want = v1beta1.ConditionTrue
			}
			contains(t, tc.cond, cond(t, got.Status.Conditions, tc.cond, want).Message, tc.msg)
			if f.requeued[ns+"/rs"] != 5*time.Second {
				t.Fatalf("requeue = %v", f.requeued[ns+"/rs"])
			}
		})
	}
}

func TestRestoreInvalid(t *testing.T) {
	rs := newRestore("rs", func(rs *v1beta1.RestoreSession) {
		rs.Spec.Target.Rules = []v1beta1.Rule{{Snapshots: []string{"latest"}}, {Paths: []string{"/x"}}}
	})
	f := newFixture(t, repository("repo"), secret(), pvc("data"), rs)
	f.sync("rs")
	got := f.restore("rs")
	if got.Status.Phase != v1beta1.RestoreInvalid {
		t.Fatalf("phase = %s", got.Status.Phase)
	}
	cond(t, got.Status.Conditions, v1beta1.ValidationPassed, v1beta1.ConditionFalse)
	contains(t, "reason", got.Status.Reason, "at most one rule may have empty targetHosts")
	if f.built != 0 || len(f.pusher.restores) != 0 {
		t.Fatal("an invalid restore built Jobs or pushed metrics")
	}
}

// Targets an older schema admitted and that restored into the wrong place
// (and succeeded) end Invalid, naming the field, before any PVC or Job is
// made.
func TestRestoreInvalidTargets(t *testing.T) {
	tpl := []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "fresh"}}}
	for name, tc := range map[string]struct {
		mutate func(*v1beta1.RestoreSession)
		reason string
	}{
		"ref and templates": {func(rs *v1beta1.RestoreSession) { rs.Spec.Target.VolumeClaimTemplates = tpl },
			"spec.target.volumeClaimTemplates: Forbidden: must not be set together with spec.target.ref.name"},
		// The schema had only a minimum: every replica's Job and PVCs were
		// built on each sync, until the operator ran out of memory.
		// (101, not 2147483647: without the bound this test would build
		// them all too.)
		"replicas 101": {func(rs *v1beta1.RestoreSession) {
			n := int32(101)
			rs.Spec.Target.Ref.Name, rs.Spec.Target.Replicas, rs.Spec.Target.VolumeClaimTemplates = "", &n, tpl
		}, "spec.target.replicas: Invalid value: 101: must be between 1 and 100"},
		"target at the interim volume": {func(rs *v1beta1.RestoreSession) {
			rs.Spec.Target.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/stow-interim-volume"}}
			rs.Spec.InterimVolumeTemplate = &corev1.PersistentVolumeClaim{}
		}, "spec.target.volumeMounts[0].mountPath: Invalid value: \"/stow-interim-volume\""},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, repository("repo"), secret(), pvc("data"), newRestore("rs", tc.mutate))
			f.syncRestore("rs", 3)
			got := f.restore("rs")
			if got.Status.Phase != v1beta1.RestoreInvalid {
				t.Fatalf("phase = %s (%s)", got.Status.Phase, got.Status.Reason)
			}
			cond(t, got.Status.Conditions, v1beta1.ValidationPassed, v1beta1.ConditionFalse)
			contains(t, "reason", got.Status.Reason, tc.reason)
			if f.built != 0 {
				t.Error("Jobs were built")
			}
			if l, _ := f.kube.CoreV1().PersistentVolumeClaims(ns).List(context.Background(), metav1.ListOptions{}); len(l.Items) != 1 {
				t.Errorf("%d PVCs, want only the existing one", len(l.Items))
			}
		})
	}
}

// A Task parameter naming a variable Stow computes makes the restore
// Invalid, naming the parameter: TARGET_NAME would restore into another PVC
// than the one whose backups the restore paused and whose snapshot it chose.
func TestRestoreTaskParamReplacingTargetIsInvalid(t *testing.T) {
	rs := newRestore("rs", func(rs *v1beta1.RestoreSession) {
		rs.Spec.Task.Params = []v1beta1.Param{{Name: "outputDir", Value: "/stow-tmp/out"}, {Name: "TARGET_NAME", Value: "other-pvc"}}
	})
	f := newFixture(t, repository("repo"), secret(), pvc("data"), pvc("other-pvc"), rs)
	f.sync("rs")
	got := f.restore("rs")
	if got.Status.Phase != v1beta1.RestoreInvalid {
		t.Fatalf("phase = %s (%s)", got.Status.Phase, got.Status.Reason)
	}
	cond(t, got.Status.Conditions, v1beta1.ValidationPassed, v1beta1.ConditionFalse)
	contains(t, "reason", got.Status.Reason, `spec.task.params[1].name: Invalid value: "TARGET_NAME"`)
	if f.built != 0 {
		t.Fatal("a restore redirected by a Task parameter built Jobs")
	}
}

// runtimeSettings env that would steer the runner (STOW_RESTIC: the program
// run as restic) makes the restore Invalid, naming the variable.
func TestRestoreEnvSteeringTheRunnerIsInvalid(t *testing.T) {
	rs := newRestore("rs", func(rs *v1beta1.RestoreSession) {
		rs.Spec.RuntimeSettings.Container = &v1beta1.ContainerRuntimeSettings{Env: []corev1.EnvVar{{Name: "STOW_RESTIC", Value: "/stow-data/evil"}}}
	})
	f := newFixture(t, repository("repo"), secret(), pvc("data"), rs)
	f.sync("rs")
	got := f.restore("rs")
	if got.Status.Phase != v1beta1.RestoreInvalid || f.built != 0 {
		t.Fatalf("phase = %s (%s), %d builds", got.Status.Phase, got.Status.Reason, f.built)
	}
	contains(t, "reason", got.Status.Reason, `spec.runtimeSettings.container.env[0].name: Invalid value: "STOW_RESTIC"`)
}

// A Task parameter that decides what the Job's pod mounts shows when the
// Task is resolved: the restore ends Invalid, not Failed, with the cause.
func TestRestoreTaskParamChoosingAMountIsInvalid(t *testing.T) {
	rs := newRestore("rs", func(rs *v1beta1.RestoreSession) {
		rs.Spec.Task.Params = []v1beta1.Param{{Name: "targetVolume", Value: v1beta1.TmpDirVolumeName}}
	})
	f := newFixture(t, repository("repo"), secret(), pvc("data"), rs)
	f.c.cfg.BuildJobs = func(rs *v1beta1.RestoreSession, repo *v1beta1.Repository, task *v1beta1.Task, fns map[string]*v1beta1.Function, resolved []jobenv.ResolvedSnapshot) ([]*batchv1.Job, []*corev1.PersistentVolumeClaim, error) {
		return resolve.RestoreJobs(rs, repo, task, fns, resolved, resolve.Options{Image: "stow:test"})
	}
	f.sync("rs")
	got := f.restore("rs")
	if got.Status.Phase != v1beta1.RestoreInvalid {
		t.Fatalf("phase = %s (%s)", got.Status.Phase, got.Status.Reason)
	}
	cond(t, got.Status.Conditions, v1beta1.ValidationPassed, v1beta1.ConditionFalse)
	contains(t, "reason", got.Status.Reason, "spec.task.params[0] (targetVolume) decides what container pvc-restore-0 mounts at /stow-data")
	if f.job(names.RestoreJob("rs", 0)) != nil {
		t.Fatal("a Job was made")
	}
}

func TestRestoreWatchdog(t *testing.T) {
	for _, tc := range []struct {
		name      string
		phase     corev1.PodPhase
		statuses  []corev1.ContainerStatus
		advance   time.Duration
		deleteJob bool
		disrupted string
		reason    string
	}{
		{name: "pending too long", phase: corev1.PodPending, statuses: []corev1.ContainerStatus{waiting("pvc-restore-0", "ContainerCreating", "")},
			advance: 6 * time.Minute, disrupted: v1beta1.PodHasBeenInPendingStateForLongerThanExpected, reason: "ContainerCreating"},
		{name: "step failed", phase: corev1.PodFailed, statuses: []corev1.ContainerStatus{
			terminated("pvc-restore-0", 1, "Error", encode(jobresult.Result{Step: "restore-pvc", Error: "no snapshot found for host host-0"}))},
			reason: "host host-0: no snapshot found for host host-0"},
		{name: "job deleted", deleteJob: true, disrupted: v1beta1.ExecutorDeleted, reason: "deleted before it reported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, repository("repo"), secret(), pvc("data"), newRestore("rs"))
			f.syncRestore("rs", 2)
			jobName := names.RestoreJob("rs", 0)
			if tc.deleteJob {
				_ = f.kube.BatchV1().Jobs(ns).Delete(context.Background(), jobName, metav1.DeleteOptions{})
				f.resync()
			} else {
				f.setPod(jobName, tc.phase, t0, nil, tc.statuses...)
			}
			f.clock.Step(tc.advance)
			f.sync("rs")
			got := f.restore("rs")
			if got.Status.Phase != v1beta1.RestoreFailed {
				t.Fatalf("phase = %s (%s)", got.Status.Phase, got.Status.Reason)
			}
			if tc.disrupted != "" {
				if c := cond(t, got.Status.Conditions, v1beta1.RestoreDisrupted, v1beta1.ConditionTrue); c.Reason != tc.disrupted {
					t.Fatalf("RestoreDisrupted reason = %s", c.Reason)
				}
				if f.job(jobName) != nil {
					t.Fatal("the Job was not stopped")
				}
			}
			contains(t, "reason", got.Status.Reason, tc.reason)
			if !slices.Equal(f.pusher.restores, []bool{false}) {
				t.Fatalf("pushed %v, want one failure", f.pusher.restores)
			}
		})
	}
}

func TestRestoreDeadline(t *testing.T) {
	f := newFixture(t, repository("repo"), secret(), pvc("data"),
		newRestore("rs", func(rs *v1beta1.RestoreSession) { rs.Spec.TimeOut = &v1beta1.Duration{Duration: 20 * time.Minute} }))
	f.syncRestore("rs", 2)
	f.setPod(names.RestoreJob("rs", 0), corev1.PodRunning, t0, nil)
	f.clock.Step(20 * time.Minute)
	f.sync("rs")
	got := f.restore("rs")
	cond(t, got.Status.Conditions, v1beta1.DeadlineExceeded, v1beta1.ConditionTrue)
	if got.Status.Phase != v1beta1.RestoreFailed || f.job(names.RestoreJob("rs", 0)) != nil {
		t.Fatalf("phase = %s; Job must be stopped", got.Status.Phase)
	}
}

func TestRestoreReplicasRunOneAtATime(t *testing.T) {
	two := int32(2)
	rs := newRestore("rs", func(rs *v1beta1.RestoreSession) {
		rs.Spec.Target.Ref.Name = ""
		rs.Spec.Target.Replicas = &two
		rs.Spec.Target.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}}
	})
	f := newFixture(t, repository("repo"), secret(), rs)
	f.syncRestore("rs", 2)
	for _, p := range []string{"data-0", "data-1"} {
		if _, err := f.kube.CoreV1().PersistentVolumeClaims(ns).Get(context.Background(), p, metav1.GetOptions{}); err != nil {
			t.Fatalf("PVC %s not created: %v", p, err)
		}
	}
	if f.job(names.RestoreJob("rs", 0)) == nil || f.job(names.RestoreJob("rs", 1)) != nil {
		t.Fatal("want only the first ordinal's Job")
	}
	f.setPod(names.RestoreJob("rs", 0), corev1.PodSucceeded, t0, nil, restoreOK())
	f.sync("rs")
	if f.job(names.RestoreJob("rs", 1)) == nil {
		t.Fatal("second ordinal not started after the first finished")
	}
	if p := f.restore("rs").Status.Phase; p != v1beta1.RestoreRunning {
		t.Fatalf("phase = %s", p)
	}
	f.setPod(names.RestoreJob("rs", 1), corev1.PodSucceeded, t0, nil, restoreOK())
	f.sync("rs")
	got := f.restore("rs")
	if got.Status.Phase != v1beta1.RestoreSucceeded || len(got.Status.Stats) != 2 {
		t.Fatalf("phase = %s stats %+v", got.Status.Phase, got.Status.Stats)
	}
}

// An invalid RestoreSession (its stored spec no longer decodes, or fails
// validation) ends Invalid without Stow's finalizer: with an immutable spec
// and a schema that refuses every write of it, a finalizer could never be
// removed again.
func TestInvalidRestoreGetsNoFinalizer(t *testing.T) {
	for name, mutate := range map[string]func(*v1beta1.RestoreSession){
		"unreadable": func(rs *v1beta1.RestoreSession) {
			rs.Annotations = map[string]string{v1beta1.AnnotationDecodeError: `spec.timeOut: "1 hour" is not a duration`}
		},
		"invalid": func(rs *v1beta1.RestoreSession) {
			rs.Spec.Target.Rules = []v1beta1.Rule{{Snapshots: []string{"latest"}}, {Paths: []string{"/x"}}}
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, repository("repo"), secret(), pvc("data"), newRestore("rs", mutate))
			f.sync("rs")
			got := f.restore("rs")
			if len(got.Finalizers) != 0 {
				t.Errorf("finalizers = %v", got.Finalizers)
			}
			if got.Status.Phase != v1beta1.RestoreInvalid {
				t.Errorf("phase %s (%s); want Invalid", got.Status.Phase, got.Status.Reason)
			}
		})
	}
}

func TestRestoreDeletion(t *testing.T) {
	now := metav1.NewTime(t0)
	rs := newRestore("rs", func(rs *v1beta1.RestoreSession) {
		rs.Finalizers = []string{v1beta1.Finalizer}
		rs.DeletionTimestamp = &now
	})
	f := newFixture(t, rs)
	f.sync("rs")
	if got := f.restore("rs"); slices.Contains(got.Finalizers, v1beta1.Finalizer) {
		t.Fatal("finalizer not removed")
	}
	if !slices.Equal(f.pusher.deleted, []string{"RestoreSession/app/rs"}) {
		t.Fatalf("deleted groups = %v", f.pusher.deleted)
	}
}

// A volumeClaimTemplate whose name is taken by a PVC this RestoreSession did
// not create fails the restore, and no Job writes into that PVC; its own
// PVCs, found again after a restart, are used.
func TestRestoreNewPVCRefusesTakenName(t *testing.T) {
	rs := newRestore("rs", func(rs *v1beta1.RestoreSession) {
		rs.UID = "uid-rs"
		rs.Spec.Target.Ref.Name = ""
		rs.Spec.Target.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "app-data"}}}
	})
	f := newFixture(t, repository("repo"), secret(), pvc("app-data-0"), rs)
	f.syncRestore("rs", 2)
	got := f.restore("rs")
	if got.Status.Phase != v1beta1.RestoreFailed {
		t.Fatalf("phase = %s, want Failed: %+v", got.Status.Phase, got.Status)
	}
	contains(t, "reason", got.Status.Reason, "PVC app-data-0 already exists and was not created by this RestoreSession")
	if f.job(names.RestoreJob("rs", 0)) != nil {
		t.Fatal("a restore Job was created for someone else's PVC")
	}

	mine := pvc("mine-0")
	mine.Annotations = map[string]string{v1beta1.AnnotationRestoredBy: "uid-rs2"}
	rs2 := newRestore("rs2", func(rs *v1beta1.RestoreSession) {
		rs.UID = "uid-rs2"
		rs.Spec.Target.Ref.Name = ""
		rs.Spec.Target.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "mine"}}}
	})
	f = newFixture(t, repository("repo"), secret(), mine, rs2)
	f.syncRestore("rs2", 2)
	if f.job(names.RestoreJob("rs2", 0)) == nil {
		t.Fatalf("no Job for the RestoreSession's own PVC: %+v", f.restore("rs2").Status)
	}
}

// A restore Function written for Stash reports through Stash's output.json,
// which update-status carries (stashOutput): the restore succeeds. The
// same Job without that report "reported no result".
func TestRestoreStashFunctionOutput(t *testing.T) {
	for _, stash := range []bool{true, false} {
		f := newFixture(t, repository("repo"), secret(), pvc("data"), newRestore("rs"))
		f.syncRestore("rs", 2)
		status := terminated("update-status-1", 0, "Completed", encode(jobresult.Result{Step: v1beta1.FunctionUpdateStatus, Host: "host-0", StashOutput: stash}))
		f.setPod(names.RestoreJob("rs", 0), corev1.PodSucceeded, t0, nil, terminated("stash-restore-0", 0, "Completed", ""), status)
		f.sync("rs")
		got := f.restore("rs")
		if stash && got.Status.Phase != v1beta1.RestoreSucceeded {
			t.Errorf("with Stash's output: %s %q %+v", got.Status.Phase, got.Status.Reason, got.Status.Stats)
		}
		if !stash && (got.Status.Phase != v1beta1.RestoreFailed || !strings.Contains(fmt.Sprint(got.Status.Stats), "reported no result")) {
			t.Errorf("without any report: %s %+v", got.Status.Phase, got.Status.Stats)
		}
	}
}

// A sync on a cache that has not seen the write that ended the restore acts
// on nothing: from the older, Running copy it would end the restore again,
// with a second Event and a second metrics push.
func TestStaleCacheActsNoMore(t *testing.T) {
	rs := newRestore("rs")
	rs.ResourceVersion = "1"
	f := newFixture(t, repository("repo"), secret(), pvc("data"), backupOf("nightly", "data"), rs)
	controllertest.StampResourceVersions(&f.stow.Fake, "restoresessions")
	f.sync("rs")
	f.sync("rs")
	job := f.job(names.RestoreJob("rs", 0))
	if job == nil {
		t.Fatal("no restore Job")
	}
	stale := f.restore("rs")
	f.clock.Step(30 * time.Second)
	f.setPod(job.Name, corev1.PodSucceeded, t0, nil, restoreOK())
	f.sync("rs")
	if got := f.restore("rs"); got.Status.Phase != v1beta1.RestoreSucceeded || got.ResourceVersion == stale.ResourceVersion {
		t.Fatalf("phase %s resourceVersion %s: want Succeeded by a write", got.Status.Phase, got.ResourceVersion)
	}
	f.events()
	pushes := len(f.pusher.restores)

	if err := f.sinf.Stow().V1beta1().RestoreSessions().Informer().GetIndexer().Update(stale); err != nil {
		t.Fatal(err)
	}
	f.stow.ClearActions()
	f.kube.ClearActions()
	after, err := f.c.sync(context.Background(), ns+"/rs")
	if err != nil {
		t.Fatal(err)
	}
	if ev := f.events(); len(ev) > 0 {
		t.Errorf("a sync on the stale cache recorded Events: %q", ev)
	}
	if len(f.pusher.restores) != pushes {
		t.Errorf("a sync on the stale cache pushed the restore's metrics again")
	}
	if a := append(f.stow.Actions(), f.kube.Actions()...); len(a) > 0 {
		t.Errorf("a sync on the stale cache called the API: %v", a)
	}
	if after != internal.StaleRequeue {
		t.Errorf("requeue after %s, want %s", after, internal.StaleRequeue)
	}
}

// A restore from a Repository of another namespace that does not allow this
// one reads as one from a Repository that does not exist: it waits, with the
// same status, and nothing of the Repository (its Secret, its backend) is
// read or reported.
func TestForbiddenRepositoryTellsNothing(t *testing.T) {
	fromVault := func(rs *v1beta1.RestoreSession) { rs.Spec.Repository.Namespace = "vault" }
	var want *v1beta1.RestoreSessionStatus
	for _, tc := range []struct {
		name string
		objs []runtime.Object
	}{
		{"no repository", nil},
		{"repository without usagePolicy", []runtime.Object{func() runtime.Object {
			r := repository("repo")
			r.Namespace = "vault"
			r.Spec.Backend.Local = &v1beta1.LocalSpec{MountPath: "/stow-data"} // would overlap the target's mount
			return r
		}(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "vault"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, append([]runtime.Object{pvc("data"), newRestore("rs", fromVault)}, tc.objs...)...)
			f.sync("rs")
			got := f.restore("rs")
			c := cond(t, got.Status.Conditions, v1beta1.RepositoryFound, v1beta1.ConditionFalse)
			contains(t, "RepositoryFound", c.Message, `not found, or its usagePolicy does not allow namespace "app"`)
			if got.Status.Phase.IsFinal() || f.built != 0 {
				t.Fatalf("phase %s, %d Jobs built: want a waiting restore", got.Status.Phase, f.built)
			}
			for _, a := range f.kube.Actions() {
				if a.GetResource().Resource == "secrets" {
					t.Errorf("read a Secret of a Repository it may not use: %v", a)
				}
			}
			st := got.Status.DeepCopy()
			for i := range st.Conditions {
				st.Conditions[i].LastTransitionTime = metav1.Time{}
			}
			if want == nil {
				want = st
			} else if !equality.Semantic.DeepEqual(st, want) {
				t.Errorf("status %+v differs from that of a restore from a Repository that does not exist: %+v", st, want)
			}
		})
	}
}

// Extra restic arguments the restore Job's runner would refuse make the
// restore Invalid at once, not fail when its Job runs.
func TestRestoreArgsTheJobWouldRefuse(t *testing.T) {
	rs := newRestore("rs", func(rs *v1beta1.RestoreSession) {
		rs.Spec.Target.Args = []string{"--tag=t1,t2"} // Stash's passing_args guide
	})
	f := newFixture(t, repository("repo"), secret(), pvc("data"), rs)
	f.sync("rs")
	got := f.restore("rs")
	if got.Status.Phase != v1beta1.RestoreInvalid || f.built != 0 {
		t.Fatalf("phase %s, %d Jobs built: want Invalid before any Job", got.Status.Phase, f.built)
	}
	contains(t, "reason", got.Status.Reason, `spec.target.args: restic restore argument "--tag=t1,t2" is not allowed`)
}

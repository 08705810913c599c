package repository

import (
	"context"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	stowfake "github.com/stowhq/stow/client/clientset/versioned/fake"
	"github.com/stowhq/stow/client/informers/externalversions"
	"github.com/stowhq/stow/pkg/controller/executor"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/controller/internal/controllertest"
	"github.com/stowhq/stow/pkg/jobresult"
	"github.com/stowhq/stow/pkg/names"
	"github.com/stowhq/stow/pkg/resolve"
)

type maintFixture struct {
	*fixture
	kube *k8sfake.Clientset
	kinf informers.SharedInformerFactory
	now  time.Time
}

// newMaintFixture's repositories are created now: no scheduled task is due.
func newMaintFixture(t *testing.T, objs ...runtime.Object) *maintFixture {
	for _, o := range objs {
		if r, ok := o.(*v1beta1.Repository); ok {
			r.CreationTimestamp = metav1.NewTime(time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC))
		}
	}
	kube := k8sfake.NewClientset()
	f := &maintFixture{fixture: &fixture{t: t, stow: stowfake.NewSimpleClientset(objs...), rec: record.NewFakeRecorder(50)},
		kube: kube, kinf: informers.NewSharedInformerFactory(kube, 0), now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	f.sinf = externalversions.NewSharedInformerFactory(f.stow, 0)
	opts := resolve.Options{Image: "example.org/stow:test", LockHostPrefix: "stow-0123abcd-", OperatorURL: "http://op"}
	gate := executor.NewGate(f.kinf.Batch().V1().Jobs().Lister(), f.kinf.Core().V1().Pods().Lister(), nil, 0)
	f.c = NewController(kube, f.stow, f.sinf, f.rec).WithMaintenance(Maintenance{
		Build: func(r *v1beta1.Repository, tasks []string, runID string, created metav1.Time) (*batchv1.Job, error) {
			return resolve.MaintenanceJob(r, tasks, runID, created, opts)
		},
		BuildWipe: func(r *v1beta1.Repository, created metav1.Time) (*batchv1.Job, error) {
			return resolve.WipeJob(r, created, opts)
		},
		Gate: gate,
	}, f.kinf)
	f.c.now = func() time.Time { return f.now }
	return f
}

// sync refreshes the Job and pod caches from the fake API, then syncs.
func (f *maintFixture) syncRepo() {
	f.t.Helper()
	ctx := context.Background()
	jobs, _ := f.kube.BatchV1().Jobs("").List(ctx, metav1.ListOptions{})
	for i := range jobs.Items {
		// The API server stamps a new Job; the fake does not, and a Job
		// created at the zero time has waited for its pod for too long.
		if j := &jobs.Items[i]; j.CreationTimestamp.IsZero() {
			j.CreationTimestamp = metav1.NewTime(f.now)
			if _, err := f.kube.BatchV1().Jobs(j.Namespace).Update(ctx, j, metav1.UpdateOptions{}); err != nil {
				f.t.Fatal(err)
			}
		}
	}
	pods, _ := f.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err := f.kinf.Batch().V1().Jobs().Informer().GetStore().Replace(items(jobs.Items), ""); err != nil {
		f.t.Fatal(err)
	}
	if err := f.kinf.Core().V1().Pods().Informer().GetStore().Replace(items(pods.Items), ""); err != nil {
		f.t.Fatal(err)
	}
	f.sync("demo", "repo")
}

func (f *maintFixture) onlyJob() *batchv1.Job {
	f.t.Helper()
	l, _ := f.kube.BatchV1().Jobs("demo").List(context.Background(), metav1.ListOptions{})
	if len(l.Items) != 1 {
		f.t.Fatalf("%d maintenance Jobs, want 1", len(l.Items))
	}
	return &l.Items[0]
}

// finishPod makes the Job's pod end with res as the maintain step's result.
func (f *maintFixture) finishPod(job *batchv1.Job, res jobresult.Result, exit int32) {
	f.t.Helper()
	phase := corev1.PodSucceeded
	if exit != 0 {
		phase = corev1.PodFailed
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: job.Name + "-x", Namespace: job.Namespace, CreationTimestamp: metav1.NewTime(f.now),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, batchv1.SchemeGroupVersion.WithKind("Job"))}},
		Status: corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{{Name: job.Spec.Template.Spec.Containers[0].Name,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: exit, Message: string(jobresult.Encode(res))}}}}},
	}
	if _, err := f.kube.CoreV1().Pods(job.Namespace).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

// A check asked for by annotation runs in a Job of its own that needs the
// repository alone; its result lands in the Repository's status, and the
// request is answered once.
func TestMaintenanceRequestedCheck(t *testing.T) {
	r := repository("demo")
	r.UID = "repo-uid"
	r.Annotations = map[string]string{v1beta1.MaintenanceRequestAnnotation(v1beta1.MaintenanceCheck): "req-1"}
	f := newMaintFixture(t, r)
	f.syncRepo()
	job := f.onlyJob()
	if job.Annotations[v1beta1.AnnotationLockMode] != string(executor.Exclusive) || job.Annotations[v1beta1.AnnotationMaintenance] != "repo" {
		t.Fatalf("Job annotations = %v", job.Annotations)
	}
	args := strings.Join(job.Spec.Template.Spec.Containers[0].Args, " ")
	if !strings.Contains(args, "--check=true") || !strings.Contains(args, "--prune=false") || metav1.GetControllerOf(job).UID != "repo-uid" {
		t.Fatalf("Job args %q, owner %+v", args, metav1.GetControllerOf(job))
	}
	st := f.repo("demo", "repo").Status.Maintenance
	if st == nil || st.Job != job.Name || st.JobTasks != "check" {
		t.Fatalf("status.maintenance = %+v", st)
	}
	// Same request again while it runs: no second Job.
	f.syncRepo()
	f.onlyJob()

	f.now = f.now.Add(time.Minute)
	f.finishPod(job, jobresult.Result{Step: "maintain", Integrity: ptrBool(true)}, 0)
	f.syncRepo()
	got := f.repo("demo", "repo").Status
	if got.Maintenance.Job != "" || got.Maintenance.Check == nil || got.Maintenance.Check.Request != "req-1" ||
		got.Maintenance.Check.Succeeded == nil || !*got.Maintenance.Check.Succeeded || got.Integrity == nil || !*got.Integrity {
		t.Fatalf("status after the check = %+v (check %+v)", got, got.Maintenance.Check)
	}
	if c := v1beta1.GetCondition(got.Conditions, v1beta1.MaintenanceFailed); c == nil || c.Status != v1beta1.ConditionFalse {
		t.Errorf("MaintenanceFailed = %+v", c)
	}
	// The sync that recorded the run knows the request is answered: it
	// neither starts the same request again nor waits to.
	if c := v1beta1.GetCondition(got.Conditions, v1beta1.MaintenanceWaiting); c != nil {
		t.Errorf("the answered request waits to run again: %+v", c)
	}
	if l, _ := f.kube.BatchV1().Jobs("demo").List(context.Background(), metav1.ListOptions{}); len(l.Items) != 1 {
		t.Errorf("%d maintenance Jobs after the request was answered, want the one that answered it", len(l.Items))
	}
	if ev := f.events(); !strings.Contains(ev, EventMaintenanceStarted) || !strings.Contains(ev, EventMaintenanceSucceeded) || strings.Count(ev, EventMaintenanceStarted) != 1 {
		t.Errorf("events = %q, want one start and its success", ev)
	}
	// Answered: nothing more runs until the next request or schedule.
	_ = f.kube.BatchV1().Jobs("demo").Delete(context.Background(), job.Name, metav1.DeleteOptions{})
	f.syncRepo()
	if l, _ := f.kube.BatchV1().Jobs("demo").List(context.Background(), metav1.ListOptions{}); len(l.Items) != 0 {
		t.Fatalf("an answered request started Job %s", l.Items[0].Name)
	}
}

// A sync on a cache that has not seen the write recording a maintenance run
// acts on nothing: in that copy the run's Job is still in flight, and
// acting on it would announce (and push) the run's end a second time, or
// start the answered request again once the Job is gone. It looks again
// shortly, when the cache will have caught up.
func TestMaintenanceStaleCacheActsNoMore(t *testing.T) {
	r := repository("demo")
	r.UID, r.ResourceVersion = "repo-uid", "1"
	r.Annotations = map[string]string{v1beta1.MaintenanceRequestAnnotation(v1beta1.MaintenanceCheck): "req-1"}
	f := newMaintFixture(t, r)
	controllertest.StampResourceVersions(&f.stow.Fake, "repositories")
	f.syncRepo()
	job := f.onlyJob()
	stale := f.repo("demo", "repo")
	f.now = f.now.Add(time.Minute)
	f.finishPod(job, jobresult.Result{Step: "maintain", Integrity: ptrBool(true)}, 0)
	f.syncRepo()
	if got := f.repo("demo", "repo"); got.Status.Maintenance.Check == nil || got.ResourceVersion == stale.ResourceVersion {
		t.Fatalf("the run was not recorded by a write: %+v (resourceVersion %s)", got.Status.Maintenance, got.ResourceVersion)
	}
	f.events()
	_ = f.kube.BatchV1().Jobs("demo").Delete(context.Background(), job.Name, metav1.DeleteOptions{})
	if err := f.sinf.Stow().V1beta1().Repositories().Informer().GetStore().Update(stale); err != nil {
		t.Fatal(err)
	}
	f.stow.ClearActions()
	f.kube.ClearActions()
	after, err := f.c.sync(context.Background(), "demo/repo")
	if err != nil {
		t.Fatal(err)
	}
	if ev := f.events(); ev != "" {
		t.Errorf("a sync on the stale cache recorded Events: %q", ev)
	}
	if a := append(f.stow.Actions(), f.kube.Actions()...); len(a) > 0 {
		t.Errorf("a sync on the stale cache called the API: %v", a)
	}
	if after != internal.StaleRequeue {
		t.Errorf("requeue after %s, want %s", after, internal.StaleRequeue)
	}
}

// A failed check fails the run with the step's cause and sets integrity
// false; a prune in the same run that succeeded is recorded as such.
func TestMaintenanceFailedCheck(t *testing.T) {
	r := repository("demo")
	r.UID = "repo-uid"
	r.Annotations = map[string]string{
		v1beta1.MaintenanceRequestAnnotation(v1beta1.MaintenanceCheck): "a",
		v1beta1.MaintenanceRequestAnnotation(v1beta1.MaintenancePrune): "b",
	}
	f := newMaintFixture(t, r)
	f.syncRepo()
	job := f.onlyJob()
	f.finishPod(job, jobresult.Result{Step: "maintain", Pruned: ptrBool(true), Integrity: ptrBool(false),
		Error: "check: restic check: pack abc is damaged (exit 1)"}, 1)
	f.syncRepo()
	got := f.repo("demo", "repo").Status
	chk, pr := got.Maintenance.Check, got.Maintenance.Prune
	if chk == nil || *chk.Succeeded || !strings.Contains(chk.Message, "pack abc is damaged") || pr == nil || !*pr.Succeeded {
		t.Fatalf("check %+v prune %+v", chk, pr)
	}
	if got.Integrity == nil || *got.Integrity {
		t.Errorf("integrity = %v, want false", got.Integrity)
	}
	if c := v1beta1.GetCondition(got.Conditions, v1beta1.MaintenanceFailed); c == nil || c.Status != v1beta1.ConditionTrue || !strings.Contains(c.Message, "check:") {
		t.Errorf("MaintenanceFailed = %+v", c)
	}
	if ev := f.events(); !strings.Contains(ev, "Warning "+EventMaintenanceFailed) {
		t.Errorf("events = %q", ev)
	}
}

// Maintenance that needs the repository alone waits for a backup on the
// same location, and says so.
func TestMaintenanceWaitsForTheRepository(t *testing.T) {
	r := repository("demo")
	r.UID = "repo-uid"
	r.Annotations = map[string]string{v1beta1.MaintenanceRequestAnnotation(v1beta1.MaintenancePrune): "a"}
	f := newMaintFixture(t, r)
	backup := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "stow-backup-x", Namespace: "apps",
		Labels:      map[string]string{v1beta1.LabelManagedBy: v1beta1.ManagedByStow},
		Annotations: map[string]string{v1beta1.AnnotationLocation: "s3:127.0.0.1:9000/b/", v1beta1.AnnotationLockMode: string(executor.Shared)}}}
	if _, err := f.kube.BatchV1().Jobs("apps").Create(context.Background(), backup, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.syncRepo()
	if l, _ := f.kube.BatchV1().Jobs("demo").List(context.Background(), metav1.ListOptions{}); len(l.Items) != 0 {
		t.Fatal("prune started while a backup uses the repository")
	}
	c := v1beta1.GetCondition(f.repo("demo", "repo").Status.Conditions, v1beta1.MaintenanceWaiting)
	if c == nil || c.Reason != v1beta1.RepositoryInUse || !strings.Contains(c.Message, "apps/stow-backup-x") {
		t.Fatalf("MaintenanceWaiting = %+v", c)
	}
}

func ptrBool(b bool) *bool { return &b }

// A local backend on a ReadWriteOnce volume in use on node n2: the
// maintenance Job is pinned there (one node can mount it); when n2 is lost
// while the Job runs, the run fails naming the node instead of holding the
// repository's location for ever.
func TestMaintenanceOnANodeBoundVolume(t *testing.T) {
	r := repository("demo")
	r.UID = "repo-uid"
	r.Spec.Backend = v1beta1.Backend{StorageSecretName: "creds", Local: &v1beta1.LocalSpec{MountPath: "/repo",
		VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "repo-pvc"}}}}
	r.Annotations = map[string]string{v1beta1.MaintenanceRequestAnnotation(v1beta1.MaintenanceCheck): "a"}
	f := newMaintFixture(t, r)
	ctx := context.Background()
	rwo := []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	ready := func(status corev1.ConditionStatus, since time.Time) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: status, Reason: "NodeStatusUnknown", LastTransitionTime: metav1.NewTime(since)}}}}
	}
	for _, o := range []runtime.Object{
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "repo-pvc", Namespace: "demo"},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: rwo}, Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, AccessModes: rwo}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "browser", Namespace: "demo"},
			Spec: corev1.PodSpec{NodeName: "n2", Volumes: []corev1.Volume{{Name: "r",
				VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "repo-pvc"}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning}},
		ready(corev1.ConditionTrue, f.now.Add(-time.Hour)),
	} {
		if err := f.kube.Tracker().Add(o); err != nil {
			t.Fatal(err)
		}
	}
	f.syncRepo()
	job := f.onlyJob()
	aff := job.Spec.Template.Spec.Affinity
	if aff == nil || aff.NodeAffinity == nil || !strings.Contains(aff.NodeAffinity.String(), "n2") {
		t.Fatalf("maintenance Job not pinned to n2: affinity %v", aff)
	}
	if ev := f.events(); !strings.Contains(ev, "n2") {
		t.Errorf("the start Event does not say where: %q", ev)
	}

	// The Job's pod runs on n2, which then stops reporting.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: job.Name + "-x", Namespace: "demo", CreationTimestamp: metav1.NewTime(f.now),
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(job, batchv1.SchemeGroupVersion.WithKind("Job"))}},
		Spec: corev1.PodSpec{NodeName: "n2"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	if _, err := f.kube.CoreV1().Pods("demo").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(5 * time.Minute)
	if _, err := f.kube.CoreV1().Nodes().Update(ctx, ready(corev1.ConditionUnknown, f.now.Add(-3*time.Minute)), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.syncRepo()
	st := f.repo("demo", "repo").Status
	if st.Maintenance.Job != "" || st.Maintenance.Check == nil || st.Maintenance.Check.Succeeded == nil || *st.Maintenance.Check.Succeeded ||
		!strings.Contains(st.Maintenance.Check.Message, "n2") {
		t.Fatalf("after losing n2: maintenance %+v, check %+v", st.Maintenance, st.Maintenance.Check)
	}
}

// A refresh whose listing includes the snapshot of a backup that ended
// before it but is not recorded yet is applied after that session's
// result: the snapshot is counted once, not by both.
func TestRefreshWaitsForAFinishedBackupsResult(t *testing.T) {
	r := repository("demo")
	r.UID = "repo-uid"
	r.Annotations = map[string]string{v1beta1.MaintenanceRequestAnnotation(v1beta1.MaintenanceRefresh): "req-1"}
	s := &v1beta1.BackupSession{ObjectMeta: metav1.ObjectMeta{Name: "s1", Namespace: "demo"},
		Spec:   v1beta1.BackupSessionSpec{Invoker: v1beta1.BackupInvokerRef{Kind: v1beta1.KindBackupConfiguration, Name: "bc"}},
		Status: v1beta1.BackupSessionStatus{Phase: v1beta1.BackupSessionRunning}}
	f := newMaintFixture(t, r, bc("demo", "bc", ""), s)
	f.syncRepo()
	job := f.onlyJob()
	// The backup's Job ended (the location was free for the refresh); the
	// operator has not recorded its result yet.
	backup := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: names.BackupJob("s1"), Namespace: "demo"},
		Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(f.now)}}}}
	if _, err := f.kube.BatchV1().Jobs("demo").Create(context.Background(), backup, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(10 * time.Second)
	f.finishPod(job, jobresult.Result{Step: "maintain", RepositorySnapshots: ptrInt64(1), TotalSize: "1 KiB"}, 0)
	f.syncRepo()
	if got := f.repo("demo", "repo").Status; got.Maintenance == nil || got.Maintenance.Job != job.Name || got.SnapshotCount != 0 {
		t.Fatalf("refresh applied before the finished backup's result: %+v", got)
	}
	// The result is recorded: the session counts, then the listing sets the count.
	s.Status.Phase = v1beta1.BackupSessionSucceeded
	s.Status.Conditions = []v1beta1.Condition{{Type: v1beta1.RetentionPolicyApplied, Status: v1beta1.ConditionTrue,
		Message: v1beta1.RetentionAppliedMessage(1, 0), LastTransitionTime: metav1.NewTime(f.now)}}
	s.Status.Targets = []v1beta1.BackupTargetStatus{{Stats: []v1beta1.HostBackupStats{{Hostname: "host-0", Phase: v1beta1.HostSucceeded,
		Snapshots: []v1beta1.SnapshotStats{{Name: "abc"}}}}}}
	if _, err := f.stow.StowV1beta1().BackupSessions("demo").UpdateStatus(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.syncRepo()
	got := f.repo("demo", "repo").Status
	if rf := got.Maintenance.Refresh; rf == nil || rf.Succeeded == nil || !*rf.Succeeded || got.SnapshotCount != 1 || got.TotalSize != "1 KiB" {
		t.Fatalf("after the session's result: refresh %+v, %d snapshots (%s); want the refresh applied, 1 snapshot", rf, got.SnapshotCount, got.TotalSize)
	}
}

func ptrInt64(v int64) *int64 { return &v }

// A Repository whose prune schedule never fires ("0 0 31 2 *") runs no
// prune, however often it is reconciled, and says why on its status, naming
// the field; it is not requeued for it (the old due() ran back-to-back
// prune Jobs, with their Events, on every reconcile).
func TestMaintenanceScheduleThatNeverFiresRunsNothing(t *testing.T) {
	r := repository("demo")
	r.UID = "repo-uid"
	r.Spec.Maintenance = &v1beta1.RepositoryMaintenance{
		Prune:   &v1beta1.MaintenanceSchedule{Schedule: "0 0 31 2 *"},
		Check:   &v1beta1.CheckSchedule{MaintenanceSchedule: v1beta1.MaintenanceSchedule{Suspend: true}},
		Refresh: &v1beta1.MaintenanceSchedule{Suspend: true},
	}
	f := newMaintFixture(t, r)
	for i := 0; i < 5; i++ {
		f.syncRepo()
		f.now = f.now.Add(time.Minute)
	}
	if l, _ := f.kube.BatchV1().Jobs("demo").List(context.Background(), metav1.ListOptions{}); len(l.Items) > 0 {
		t.Errorf("%d maintenance Jobs for a schedule that never fires", len(l.Items))
	}
	if ev := f.events(); strings.Contains(ev, EventMaintenanceStarted) {
		t.Errorf("events: %s", ev)
	}
	got := f.repo("demo", "repo")
	c := v1beta1.GetCondition(got.Status.Conditions, v1beta1.MaintenanceFailed)
	if c == nil || c.Status != v1beta1.ConditionTrue || c.Reason != "InvalidSchedule" ||
		!strings.Contains(c.Message, "spec.maintenance.prune.schedule") || !strings.Contains(c.Message, "never fires") {
		t.Errorf("MaintenanceFailed = %+v", c)
	}
	if got.Status.Maintenance != nil && got.Status.Maintenance.Prune != nil && got.Status.Maintenance.Prune.NextTime != nil {
		t.Errorf("prune has a next time %v", got.Status.Maintenance.Prune.NextTime)
	}
	requeue, err := f.c.sync(context.Background(), "demo/repo")
	if err != nil || requeue != 0 {
		t.Errorf("sync: requeue %v, err %v; want no requeue", requeue, err)
	}
}

package backupsession

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	stowfake "github.com/stowhq/stow/client/clientset/versioned/fake"
	"github.com/stowhq/stow/client/informers/externalversions"
	"github.com/stowhq/stow/pkg/builtin"
	"github.com/stowhq/stow/pkg/controller/executor"
	"github.com/stowhq/stow/pkg/controller/hookrun"
	"github.com/stowhq/stow/pkg/controller/internal/controllertest"
	"github.com/stowhq/stow/pkg/controller/session"
	"github.com/stowhq/stow/pkg/jobresult"
	"github.com/stowhq/stow/pkg/metrics"
	"github.com/stowhq/stow/pkg/names"
	"github.com/stowhq/stow/pkg/resolve"
)

const ns = "app"

var t0 = time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)

// recPusher records what the controller pushed.
type recPusher struct {
	metrics.Nop
	mu       sync.Mutex
	finished []bool
	phases   []v1beta1.BackupSessionPhase
	skipped  []string
	restores []bool
	deleted  []string
	repo     []jobresult.Result
	sessions []*v1beta1.BackupSession
	err      error
}

var _ metrics.SessionPusher = (*recPusher)(nil)

func (p *recPusher) BackupSessionFinished(_ context.Context, _ *v1beta1.BackupConfiguration, _ *v1beta1.Repository, s *v1beta1.BackupSession, ok bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finished = append(p.finished, ok)
	p.phases = append(p.phases, s.Status.Phase)
	p.sessions = append(p.sessions, s.DeepCopy())
	return p.err
}
func (p *recPusher) BackupSessionSkipped(_ context.Context, _ *v1beta1.BackupConfiguration, _ *v1beta1.Repository, s *v1beta1.BackupSession) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.skipped = append(p.skipped, s.Name)
	return p.err
}
func (p *recPusher) RestoreSessionFinished(_ context.Context, _ *v1beta1.RestoreSession, _ *v1beta1.Repository, ok bool) error {
	p.restores = append(p.restores, ok)
	return p.err
}
func (p *recPusher) BackupRepositoryResult(_ context.Context, _ *v1beta1.BackupConfiguration, _ *v1beta1.Repository, r jobresult.Result) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.repo = append(p.repo, r)
	return p.err
}
func (p *recPusher) DeleteInvokerGroup(_ context.Context, kind, namespace, name string) error {
	p.deleted = append(p.deleted, kind+"/"+namespace+"/"+name)
	return p.err
}

type fixture struct {
	t        *testing.T
	kube     *k8sfake.Clientset
	stow     *stowfake.Clientset
	kinf     informers.SharedInformerFactory
	sinf     externalversions.SharedInformerFactory
	clock    *testingclock.FakeClock
	pusher   *recPusher
	recorder *record.FakeRecorder
	c        *Controller
	requeued map[string]time.Duration
	built    int
	exec     *fakeExec
}

func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	t.Helper()
	return newFixtureMaxJobs(t, 0, objs...)
}

// newFixtureMaxJobs is newFixture with the gate's --max-concurrent-jobs.
func newFixtureMaxJobs(t *testing.T, maxJobs int, objs ...runtime.Object) *fixture {
	t.Helper()
	var kubeObjs, stowObjs []runtime.Object
	for _, o := range objs {
		switch o.(type) {
		case *batchv1.Job, *corev1.Pod, *corev1.Secret, *corev1.PersistentVolumeClaim, *corev1.Node:
			kubeObjs = append(kubeObjs, o)
		default:
			stowObjs = append(stowObjs, o)
		}
	}
	for _, fn := range builtin.Functions("stow:test") {
		stowObjs = append(stowObjs, fn)
	}
	for _, task := range builtin.Tasks() {
		stowObjs = append(stowObjs, task)
	}
	f := &fixture{
		t:        t,
		kube:     k8sfake.NewSimpleClientset(kubeObjs...),
		stow:     stowfake.NewSimpleClientset(stowObjs...),
		clock:    testingclock.NewFakeClock(t0),
		pusher:   &recPusher{},
		recorder: record.NewFakeRecorder(100),
		requeued: map[string]time.Duration{},
		exec:     &fakeExec{},
	}
	// The fake API server sets no creation time; the watchdog needs one.
	f.kube.PrependReactor("create", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if j, ok := a.(k8stesting.CreateAction).GetObject().(*batchv1.Job); ok && j.CreationTimestamp.IsZero() {
			j.CreationTimestamp = metav1.NewTime(f.clock.Now())
		}
		return false, nil, nil
	})
	f.kinf = informers.NewSharedInformerFactory(f.kube, 0)
	f.sinf = externalversions.NewSharedInformerFactory(f.stow, 0)
	gate := executor.NewGate(f.kinf.Batch().V1().Jobs().Lister(), f.kinf.Core().V1().Pods().Lister(), f.clock, maxJobs)
	f.c = NewController(session.Deps{Kube: f.kube, Stow: f.stow, KubeInformers: f.kinf, StowInformers: f.sinf, Recorder: f.recorder, Pusher: f.pusher, Gate: gate}, Config{
		BuildJob: func(bc *v1beta1.BackupConfiguration, s *v1beta1.BackupSession, repo *v1beta1.Repository, task *v1beta1.Task, fns map[string]*v1beta1.Function) (*batchv1.Job, error) {
			f.built++
			if task == nil || len(fns) != len(task.Spec.Steps) {
				t.Errorf("builder got task %v and %d functions", task, len(fns))
			}
			return &batchv1.Job{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "update-status", Image: "stow:test"}},
			}}}}, nil
		},
		Config: session.Config{Clock: f.clock,
			Hooks: hookrun.Config{Exec: f.exec, BuildJob: func(name, namespace string, owner metav1.OwnerReference, hookType string, h v1beta1.Handler, timeout, deadline time.Duration) (*batchv1.Job, error) {
				return resolve.HookJob(name, namespace, owner, hookType, h, timeout, deadline, resolve.Options{Image: "stow:test"})
			}}},
	})
	f.resync()
	return f
}

// resync makes the listers show what the fake API server holds, as the
// informers would after their watch events.
func (f *fixture) resync() {
	controllertest.Resync(f.t, f.kube, f.stow, f.kinf, f.sinf)
}

// sync runs one reconcile of the session and refreshes the listers.
func (f *fixture) sync(name string) {
	f.t.Helper()
	if err := f.syncErr(name); err != nil {
		f.t.Fatalf("sync %s: %v", name, err)
	}
	f.resync()
}

// syncErr runs one reconcile and records the requeue delay it asked for,
// as the work loop would AddAfter it.
func (f *fixture) syncErr(name string) error {
	after, err := f.c.sync(context.Background(), ns+"/"+name)
	if err == nil && after > 0 {
		f.requeued[ns+"/"+name] = after
	}
	return err
}

func (f *fixture) session(name string) *v1beta1.BackupSession {
	f.t.Helper()
	s, err := f.stow.StowV1beta1().BackupSessions(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatalf("get session %s: %v", name, err)
	}
	return s
}

func (f *fixture) job(name string) *batchv1.Job {
	j, err := f.kube.BatchV1().Jobs(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return j
}

// finishPod gives the session's Job a UID and a pod in the given phase with
// the given container statuses, and marks the Job finished when the pod is.
func (f *fixture) setPod(sessionName string, phase corev1.PodPhase, created time.Time, podConds []corev1.PodCondition, statuses ...corev1.ContainerStatus) {
	f.t.Helper()
	ctx := context.Background()
	j := f.job(names.BackupJob(sessionName))
	if j == nil {
		f.t.Fatalf("no Job for %s", sessionName)
	}
	j.UID = types.UID("job-" + sessionName)
	switch phase {
	case corev1.PodSucceeded:
		j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	case corev1.PodFailed:
		j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded"}}
	}
	if _, err := f.kube.BatchV1().Jobs(ns).Update(ctx, j, metav1.UpdateOptions{}); err != nil {
		f.t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: j.Name + "-abcde", Namespace: ns, CreationTimestamp: metav1.NewTime(created),
			Annotations:     j.Spec.Template.Annotations,
			Labels:          j.Spec.Template.Labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(j, batchv1.SchemeGroupVersion.WithKind("Job"))},
		},
		Status: corev1.PodStatus{Phase: phase, Conditions: podConds},
	}
	for i, cs := range statuses {
		if i < len(statuses)-1 {
			pod.Status.InitContainerStatuses = append(pod.Status.InitContainerStatuses, cs)
		} else {
			pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, cs)
		}
	}
	_ = f.kube.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{})
	if _, err := f.kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		f.t.Fatal(err)
	}
	f.resync()
}

func terminated(name string, code int32, reason, msg string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, Message: msg}}}
}

func waiting(name, reason, msg string) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}
}

func encode(r jobresult.Result) string { return string(jobresult.Encode(r)) }

func bptr(b bool) *bool { return &b }

// Test objects.

func readyBC(name, pvc string, mutate ...func(*v1beta1.BackupConfiguration)) *v1beta1.BackupConfiguration {
	bc := &v1beta1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name)},
		Spec: v1beta1.BackupConfigurationSpec{
			Schedule:        "0 2 * * *",
			Repository:      v1beta1.ObjectRef{Name: "repo"},
			Target:          &v1beta1.BackupTarget{Ref: v1beta1.TargetRef{Name: pvc}},
			RetentionPolicy: v1beta1.RetentionPolicy{Name: "keep", KeepLast: 3, Prune: true},
		},
		Status: v1beta1.BackupConfigurationStatus{Phase: v1beta1.BackupInvokerReady},
	}
	for _, m := range mutate {
		m(bc)
	}
	return bc
}

// repository is a Repository a backup already went to (backups share it);
// newRepository one that may not exist in the backend yet.
func repository(name string) *v1beta1.Repository {
	r := newRepository(name)
	first := metav1.NewTime(t0.Add(-24 * time.Hour))
	r.Status.FirstBackupTime = &first
	return r
}

func newRepository(name string) *v1beta1.Repository {
	return &v1beta1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{StorageSecretName: "creds",
			S3: &v1beta1.S3Spec{Endpoint: "http://127.0.0.1:9000", Bucket: "b"}}},
	}
}

func newSession(name, bc string, created time.Time, phase v1beta1.BackupSessionPhase) *v1beta1.BackupSession {
	return &v1beta1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name), CreationTimestamp: metav1.NewTime(created)},
		Spec:       v1beta1.BackupSessionSpec{Invoker: v1beta1.BackupInvokerRef{Kind: v1beta1.KindBackupConfiguration, Name: bc}},
		Status:     v1beta1.BackupSessionStatus{Phase: phase},
	}
}

func cond(t *testing.T, conds []v1beta1.Condition, typ string, status v1beta1.ConditionStatus) *v1beta1.Condition {
	t.Helper()
	c := v1beta1.GetCondition(conds, typ)
	if c == nil {
		t.Fatalf("condition %s missing; have %+v", typ, conds)
	}
	if c.Status != status {
		t.Fatalf("condition %s = %s (%s: %s), want %s", typ, c.Status, c.Reason, c.Message, status)
	}
	return c
}

func contains(t *testing.T, what, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Fatalf("%s = %q, want it to contain %q", what, s, sub)
	}
}

// events drains the recorder.
func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func hasEvent(events []string, sub string) bool {
	for _, e := range events {
		if strings.Contains(e, sub) {
			return true
		}
	}
	return false
}

// started returns a session whose Job was already created, and that Job.
func started(name, bc string, created time.Time) (*v1beta1.BackupSession, *batchv1.Job) {
	s := newSession(name, bc, created, v1beta1.BackupSessionRunning)
	one := int32(1)
	s.Status.Targets = []v1beta1.BackupTargetStatus{{
		Ref: v1beta1.TargetRef{Name: "data", Namespace: ns}, TotalHosts: &one, Phase: v1beta1.TargetRunning,
		Conditions: []v1beta1.Condition{{Type: v1beta1.BackupExecutorEnsured, Status: v1beta1.ConditionTrue}},
	}}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: names.BackupJob(name), Namespace: ns, CreationTimestamp: metav1.NewTime(created)}}
	executor.Prepare(job, job.Name, ns, v1beta1.OwnerRef(v1beta1.KindBackupSession, name, s.UID), v1beta1.ComponentBackup,
		v1beta1.AnnotationBackupSession, name, ns+"/repo", executor.Request{Location: "s3:test/repo", Mode: executor.Shared})
	return s, job
}

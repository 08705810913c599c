package restoresession

import (
	"context"
	"fmt"
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
	"github.com/stowhq/stow/pkg/jobenv"
	"github.com/stowhq/stow/pkg/jobresult"
	"github.com/stowhq/stow/pkg/metrics"
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
	err      error
}

var _ metrics.SessionPusher = (*recPusher)(nil)

func (p *recPusher) BackupSessionFinished(_ context.Context, _ *v1beta1.BackupConfiguration, _ *v1beta1.Repository, s *v1beta1.BackupSession, ok bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finished = append(p.finished, ok)
	p.phases = append(p.phases, s.Status.Phase)
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
func (p *recPusher) DeleteInvokerGroup(_ context.Context, kind, namespace, name string) error {
	p.deleted = append(p.deleted, kind+"/"+namespace+"/"+name)
	return p.err
}

type fixture struct {
	t         *testing.T
	kube      *k8sfake.Clientset
	stow      *stowfake.Clientset
	kinf      informers.SharedInformerFactory
	sinf      externalversions.SharedInformerFactory
	clock     *testingclock.FakeClock
	pusher    *recPusher
	recorder  *record.FakeRecorder
	c         *Controller
	requeued  map[string]time.Duration
	built     int
	lastBuilt *v1beta1.RestoreSession
}

func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
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
	gate := executor.NewGate(f.kinf.Batch().V1().Jobs().Lister(), f.kinf.Core().V1().Pods().Lister(), f.clock, 0)
	f.c = NewController(session.Deps{Kube: f.kube, Stow: f.stow, KubeInformers: f.kinf, StowInformers: f.sinf, Recorder: f.recorder, Pusher: f.pusher, Gate: gate}, Config{
		Config: session.Config{Clock: f.clock,
			Hooks: hookrun.Config{BuildJob: func(name, namespace string, owner metav1.OwnerReference, hookType string, h v1beta1.Handler, timeout, deadline time.Duration) (*batchv1.Job, error) {
				return resolve.HookJob(name, namespace, owner, hookType, h, timeout, deadline, resolve.Options{Image: "stow:test"})
			}}},
		BuildJobs: func(rs *v1beta1.RestoreSession, repo *v1beta1.Repository, task *v1beta1.Task, fns map[string]*v1beta1.Function, _ []jobenv.ResolvedSnapshot) ([]*batchv1.Job, []*corev1.PersistentVolumeClaim, error) {
			f.built++
			f.lastBuilt = rs.DeepCopy()
			if task == nil || len(fns) != len(task.Spec.Steps) {
				t.Errorf("builder got task %v and %d functions", task, len(fns))
			}
			var jobs []*batchv1.Job
			var pvcs []*corev1.PersistentVolumeClaim
			n := 1
			if r := rs.Spec.Target.Replicas; r != nil && len(rs.Spec.Target.VolumeClaimTemplates) > 0 {
				n = int(*r)
			}
			for i := 0; i < n; i++ {
				jobs = append(jobs, &batchv1.Job{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "update-status", Image: "stow:test"}},
				}}}})
				for _, tpl := range rs.Spec.Target.VolumeClaimTemplates {
					p := tpl.DeepCopy()
					p.Name = fmt.Sprintf("%s-%d", tpl.Name, i)
					p.Namespace = rs.Namespace
					p.Annotations = map[string]string{v1beta1.AnnotationRestoredBy: string(rs.UID)}
					pvcs = append(pvcs, p)
				}
			}
			return jobs, pvcs, nil
		},
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
	after, err := f.c.sync(context.Background(), ns+"/"+name)
	if err != nil {
		f.t.Fatalf("sync %s: %v", name, err)
	}
	if after > 0 {
		f.requeued[ns+"/"+name] = after
	}
	f.resync()
}

func (f *fixture) restore(name string) *v1beta1.RestoreSession {
	f.t.Helper()
	s, err := f.stow.StowV1beta1().RestoreSessions(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatalf("get restore %s: %v", name, err)
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
func (f *fixture) setPod(jobName string, phase corev1.PodPhase, created time.Time, podConds []corev1.PodCondition, statuses ...corev1.ContainerStatus) {
	f.t.Helper()
	ctx := context.Background()
	j := f.job(jobName)
	if j == nil {
		f.t.Fatalf("no Job %s", jobName)
	}
	j.UID = types.UID("uid-" + jobName)
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

func repository(name string) *v1beta1.Repository {
	return &v1beta1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{StorageSecretName: "creds",
			S3: &v1beta1.S3Spec{Endpoint: "http://127.0.0.1:9000", Bucket: "b"}}},
	}
}

func secret() *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: ns}}
}

func pvc(name string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
}

func backupOf(name, target string) *v1beta1.BackupConfiguration {
	return &v1beta1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: v1beta1.BackupConfigurationSpec{Schedule: "@daily", Repository: v1beta1.ObjectRef{Name: "repo"},
			Target: &v1beta1.BackupTarget{Ref: v1beta1.TargetRef{Name: target}}, RetentionPolicy: v1beta1.RetentionPolicy{Name: "k"}},
		Status: v1beta1.BackupConfigurationStatus{Phase: v1beta1.BackupInvokerReady},
	}
}

func newRestore(name string, mutate ...func(*v1beta1.RestoreSession)) *v1beta1.RestoreSession {
	rs := &v1beta1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name), CreationTimestamp: metav1.NewTime(t0)},
		Spec: v1beta1.RestoreSessionSpec{
			Repository: v1beta1.ObjectRef{Name: "repo"},
			Target:     &v1beta1.RestoreTarget{Ref: v1beta1.TargetRef{Name: "data"}},
		},
	}
	for _, m := range mutate {
		m(rs)
	}
	return rs
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

// runningBackup is a started BackupSession of bc.
func runningBackup(name, bc string) *v1beta1.BackupSession {
	one := int32(1)
	return &v1beta1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       v1beta1.BackupSessionSpec{Invoker: v1beta1.BackupInvokerRef{Name: bc}},
		Status: v1beta1.BackupSessionStatus{Phase: v1beta1.BackupSessionRunning, Targets: []v1beta1.BackupTargetStatus{{
			TotalHosts: &one, Conditions: []v1beta1.Condition{{Type: v1beta1.BackupExecutorEnsured, Status: v1beta1.ConditionTrue}},
		}}},
	}
}

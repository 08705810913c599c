package backupsession

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/internal/controllertest"
	"github.com/stowhq/stow/pkg/jobresult"
	"github.com/stowhq/stow/pkg/names"
)

// fakeExec records exec hooks and fails the pods named in fail.
type fakeExec struct {
	mu   sync.Mutex
	ran  []string // pod/container: command
	fail map[string]string
}

func (x *fakeExec) Exec(_ context.Context, _, pod, container string, command []string) (string, string, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.ran = append(x.ran, pod+"/"+container+": "+strings.Join(command, " "))
	if msg, ok := x.fail[pod]; ok {
		return "", msg, errors.New("command terminated with exit code 1")
	}
	return "ok", "", nil
}

func (x *fakeExec) calls() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]string(nil), x.ran...)
}

var receiverHook = v1beta1.Handler{HTTPPost: &v1beta1.HTTPPostAction{
	HTTPGetAction: v1beta1.HTTPGetAction{Host: "receiver", Port: intstr.FromInt32(8080)},
	Body:          `{"session":"{{ .Name }}","phase":"{{ .Status.Phase }}","error":{{ toJson .Status.Error }}}`}}

func withHooks(pre *v1beta1.Handler, post *v1beta1.PostHookHandler) func(*v1beta1.BackupConfiguration) {
	return func(bc *v1beta1.BackupConfiguration) {
		bc.Spec.Hooks = &v1beta1.BackupHooks{PreBackup: pre, PostBackup: post}
	}
}

// finishHook ends a hook Job of session as its pod would.
func (f *fixture) finishHook(session, hookType string, ok bool, errMsg string) {
	f.t.Helper()
	controllertest.FinishHookJob(f.t, f.kube, ns, names.HookJob(session, hookType), ok, errMsg)
	f.resync()
}

func TestPreHookFailurePreventsBackup(t *testing.T) {
	bc := readyBC("bc", "data", withHooks(&receiverHook, &v1beta1.PostHookHandler{Handler: receiverHook}))
	f := newFixture(t, bc, repository("repo"), newSession("bc-1", "bc", t0, ""))
	f.sync("bc-1")
	hj := f.job(names.HookJob("bc-1", v1beta1.HookPreBackup))
	if hj == nil || f.job(names.BackupJob("bc-1")) != nil {
		t.Fatalf("want the pre hook Job and no backup Job first; hook Job %v", hj)
	}
	if hj.Labels[v1beta1.LabelManagedBy] != v1beta1.ManagedByStow || hj.Spec.Template.Annotations[v1beta1.AnnotationBackupSession] != "bc-1" ||
		hj.OwnerReferences[0].UID != "uid-bc-1" {
		t.Fatalf("hook Job is not marked as the session's: %+v", hj.ObjectMeta)
	}
	args := strings.Join(hj.Spec.Template.Spec.Containers[0].Args, " ")
	contains(t, "hook args", args, `{\"session\":\"bc-1\",\"phase\":\"Running\",\"error\":\"\"}`)
	f.sync("bc-1") // still running: nothing changes
	if f.job(names.BackupJob("bc-1")) != nil {
		t.Fatal("backup Job created while the pre hook runs")
	}

	f.finishHook("bc-1", v1beta1.HookPreBackup, false, "POST http://receiver:8080: status 500 Internal Server Error")
	f.sync("bc-1")
	s := f.session("bc-1")
	c := cond(t, s.Status.Targets[0].Conditions, v1beta1.PreBackupHookExecutionSucceeded, v1beta1.ConditionFalse)
	if c.Reason != v1beta1.FailedToExecutePreBackupHook || !strings.Contains(c.Message, "status 500") {
		t.Fatalf("condition %+v", c)
	}
	if s.Status.Phase != v1beta1.BackupSessionFailed {
		t.Fatalf("phase %s", s.Status.Phase)
	}
	contains(t, "reason", s.Status.Reason, "preBackup hook failed, no backup was taken: POST http://receiver:8080: status 500")
	if f.job(names.BackupJob("bc-1")) != nil || f.built != 0 {
		t.Fatal("a backup Job was made after the pre hook failed")
	}
	if f.job(names.HookJob("bc-1", v1beta1.HookPostBackup)) != nil {
		t.Fatal("the post hook ran after a failed pre hook")
	}
	if ev := f.events(); !hasEvent(ev, "Warning HookFailed preBackup hook failed: POST") {
		t.Fatalf("events %v", ev)
	}
}

func TestPreHookSucceedsThenBackupRuns(t *testing.T) {
	bc := readyBC("bc", "data", withHooks(&receiverHook, nil))
	f := newFixture(t, bc, repository("repo"), newSession("bc-1", "bc", t0, ""))
	f.sync("bc-1")
	f.finishHook("bc-1", v1beta1.HookPreBackup, true, "")
	f.sync("bc-1")
	s := f.session("bc-1")
	cond(t, s.Status.Targets[0].Conditions, v1beta1.PreBackupHookExecutionSucceeded, v1beta1.ConditionTrue)
	if f.job(names.BackupJob("bc-1")) == nil {
		t.Fatal("no backup Job after the pre hook succeeded")
	}
}

// TestPostHookPolicies is the executionPolicy table on real session
// outcomes: a successful backup, a failed step, a deleted pod, a deadline,
// and a failure with retries left.
func TestPostHookPolicies(t *testing.T) {
	type outcome string
	const (
		success  outcome = "success"
		stepFail outcome = "failed step"
		podGone  outcome = "pod deleted"
		deadline outcome = "deadline"
		retrying outcome = "failed, retry left"
	)
	for _, tc := range []struct {
		policy v1beta1.HookExecutionPolicy
		out    outcome
		runs   bool
	}{
		{v1beta1.ExecuteAlways, success, true}, {v1beta1.ExecuteAlways, stepFail, true}, {"", deadline, true},
		{v1beta1.ExecuteOnSuccess, success, true}, {v1beta1.ExecuteOnSuccess, stepFail, false},
		{v1beta1.ExecuteOnFailure, success, false}, {v1beta1.ExecuteOnFailure, stepFail, true},
		{v1beta1.ExecuteOnFailure, podGone, true}, {v1beta1.ExecuteOnFailure, deadline, true},
		{v1beta1.ExecuteOnFinalRetryFailure, stepFail, true}, {v1beta1.ExecuteOnFinalRetryFailure, retrying, false},
		{v1beta1.ExecuteOnFinalRetryFailure, success, false},
	} {
		t.Run(string(tc.policy)+" after "+string(tc.out), func(t *testing.T) {
			bc := readyBC("bc", "data", withHooks(nil, &v1beta1.PostHookHandler{Handler: receiverHook, ExecutionPolicy: tc.policy}),
				func(bc *v1beta1.BackupConfiguration) {
					bc.Spec.TimeOut = &v1beta1.Duration{Duration: time.Hour}
					bc.Spec.RetryConfig = &v1beta1.RetryConfig{MaxRetry: 2}
				})
			s := newSession("bc-1", "bc", t0, "")
			if tc.out == retrying {
				s.Spec.RetryLeft = 1
			}
			f := newFixture(t, bc, repository("repo"), s)
			f.sync("bc-1")
			switch tc.out {
			case success:
				f.setPod("bc-1", corev1.PodSucceeded, t0, nil, successStatuses()...)
			case stepFail, retrying:
				f.setPod("bc-1", corev1.PodFailed, t0, nil,
					terminated("pvc-backup-0", 1, "Error", encode(jobresult.Result{Step: "backup-pvc", Error: "restic: disk on fire"})),
					terminated("update-status-1", 0, "", ""))
			case podGone:
				if err := f.kube.BatchV1().Jobs(ns).Delete(context.Background(), names.BackupJob("bc-1"), metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
				f.resync()
			case deadline:
				f.setPod("bc-1", corev1.PodRunning, t0, nil)
				f.clock.Step(time.Hour)
			}
			f.sync("bc-1")
			s = f.session("bc-1")
			hj := f.job(names.HookJob("bc-1", v1beta1.HookPostBackup))
			if !tc.runs {
				c := cond(t, s.Status.Targets[0].Conditions, v1beta1.PostBackupHookExecutionSucceeded, v1beta1.ConditionTrue)
				contains(t, "skip message", c.Message, "skipped: executionPolicy is "+string(tc.policy))
				if hj != nil || !s.Status.Phase.IsFinal() {
					t.Fatalf("skipped hook: Job %v, phase %s", hj != nil, s.Status.Phase)
				}
				return
			}
			if hj == nil {
				t.Fatalf("no post hook Job; status %+v", s.Status)
			}
			if s.Status.Phase.IsFinal() {
				t.Fatalf("session final (%s) before its post hook ended", s.Status.Phase)
			}
			args := strings.Join(hj.Spec.Template.Spec.Containers[0].Args, " ")
			if tc.out == success {
				contains(t, "hook body", args, `\"phase\":\"Succeeded\",\"error\":\"\"`)
			} else {
				contains(t, "hook body", args, `\"phase\":\"Failed\",\"error\":\"`)
			}
			f.finishHook("bc-1", v1beta1.HookPostBackup, true, "")
			f.sync("bc-1")
			s = f.session("bc-1")
			c := cond(t, s.Status.Targets[0].Conditions, v1beta1.PostBackupHookExecutionSucceeded, v1beta1.ConditionTrue)
			if c.Reason != v1beta1.SuccessfullyExecutedPostBackupHook {
				t.Fatalf("condition %+v", c)
			}
			want := v1beta1.BackupSessionFailed
			if tc.out == success {
				want = v1beta1.BackupSessionSucceeded
			}
			if s.Status.Phase != want {
				t.Fatalf("phase %s (%s), want %s", s.Status.Phase, s.Status.Reason, want)
			}
		})
	}
}

func TestPostHookFailureFailsSessionSnapshotStays(t *testing.T) {
	bc := readyBC("bc", "data", withHooks(nil, &v1beta1.PostHookHandler{Handler: receiverHook}))
	f := newFixture(t, bc, repository("repo"), newSession("bc-1", "bc", t0, ""))
	f.sync("bc-1")
	f.setPod("bc-1", corev1.PodSucceeded, t0, nil, successStatuses()...)
	f.sync("bc-1")
	f.finishHook("bc-1", v1beta1.HookPostBackup, false, "tcpSocket receiver:8080: connection refused")
	f.sync("bc-1")
	s := f.session("bc-1")
	c := cond(t, s.Status.Targets[0].Conditions, v1beta1.PostBackupHookExecutionSucceeded, v1beta1.ConditionFalse)
	if c.Reason != v1beta1.FailedToExecutePostBackupHook || s.Status.Phase != v1beta1.BackupSessionFailed {
		t.Fatalf("condition %+v, phase %s", c, s.Status.Phase)
	}
	contains(t, "reason", s.Status.Reason, "postBackup hook failed (the snapshot stays): tcpSocket receiver:8080: connection refused")
	if _, err := f.stow.StowV1beta1().Snapshots(ns).Get(context.Background(), snapID[:16], metav1.GetOptions{}); err != nil {
		t.Fatalf("the snapshot's record is gone: %v", err)
	}
	if ev := f.events(); !hasEvent(ev, "Warning HookFailed postBackup hook failed: tcpSocket") {
		t.Fatalf("events %v", ev)
	}
}

func TestTemplateErrorFailsHook(t *testing.T) {
	bad := v1beta1.Handler{HTTPPost: &v1beta1.HTTPPostAction{HTTPGetAction: v1beta1.HTTPGetAction{Host: "r", Port: intstr.FromInt32(80)}, Body: "{{ .NoSuchField }}"}}
	f := newFixture(t, readyBC("bc", "data", withHooks(&bad, nil)), repository("repo"), newSession("bc-1", "bc", t0, ""))
	f.sync("bc-1")
	s := f.session("bc-1")
	c := cond(t, s.Status.Targets[0].Conditions, v1beta1.PreBackupHookExecutionSucceeded, v1beta1.ConditionFalse)
	contains(t, "message", c.Message, "template of httpPost.body")
	if s.Status.Phase != v1beta1.BackupSessionFailed || f.job(names.HookJob("bc-1", v1beta1.HookPreBackup)) != nil {
		t.Fatalf("phase %s", s.Status.Phase)
	}
}

// appPod is a Running pod of ns that mounts the PVC claim as volume "data".
func appPod(name, claim, consent string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "sidecar"}, {Name: "db", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/db"}}}},
			Volumes:    []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	if consent != "" {
		p.Annotations = map[string]string{v1beta1.AnnotationExecHooks: consent}
	}
	return p
}

// waitExec waits until the exec hook's background run queued its session.
func (f *fixture) waitExec() {
	f.t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return f.c.Queue.Len() > 0, nil
	}); err != nil {
		f.t.Fatal("the exec hook never ended")
	}
	key, _ := f.c.Queue.Get()
	f.c.Queue.Done(key)
}

func TestExecHooks(t *testing.T) {
	freeze := v1beta1.Handler{Exec: &corev1.ExecAction{Command: []string{"fsfreeze", "{{ .Name }}"}}}
	t.Run("no pod uses the PVC", func(t *testing.T) {
		f := newFixture(t, readyBC("bc", "data", withHooks(&freeze, nil)), repository("repo"), newSession("bc-1", "bc", t0, ""),
			appPod("other", "other-pvc", "*"))
		f.sync("bc-1")
		c := cond(t, f.session("bc-1").Status.Targets[0].Conditions, v1beta1.PreBackupHookExecutionSucceeded, v1beta1.ConditionFalse)
		contains(t, "message", c.Message, "no Running pod in app mounts PVC data")
	})
	t.Run("a pod does not consent", func(t *testing.T) {
		f := newFixture(t, readyBC("bc", "data", withHooks(&freeze, nil)), repository("repo"), newSession("bc-1", "bc", t0, ""),
			appPod("db-0", "data", "bc"), appPod("db-1", "data", "someone-else"))
		f.sync("bc-1")
		c := cond(t, f.session("bc-1").Status.Targets[0].Conditions, v1beta1.PreBackupHookExecutionSucceeded, v1beta1.ConditionFalse)
		contains(t, "message", c.Message, "pod db-1 uses PVC data but does not consent to exec hooks of bc: annotate it stow.dev/exec-hooks=bc")
		if len(f.exec.calls()) != 0 {
			t.Fatalf("ran %v although a pod does not consent", f.exec.calls())
		}
	})
	t.Run("pre and post in every consenting pod", func(t *testing.T) {
		thaw := v1beta1.Handler{Exec: &corev1.ExecAction{Command: []string{"fsthaw"}}}
		f := newFixture(t, readyBC("bc", "data", withHooks(&freeze, &v1beta1.PostHookHandler{Handler: thaw})), repository("repo"),
			newSession("bc-1", "bc", t0, ""), appPod("db-0", "data", "bc"), appPod("db-1", "data", "*"))
		f.sync("bc-1")
		f.waitExec()
		f.sync("bc-1")
		s := f.session("bc-1")
		c := cond(t, s.Status.Targets[0].Conditions, v1beta1.PreBackupHookExecutionSucceeded, v1beta1.ConditionTrue)
		contains(t, "message", c.Message, "db-0, db-1")
		if got := strings.Join(f.exec.calls(), "|"); !strings.Contains(got, "db-0/db: fsfreeze bc-1") || !strings.Contains(got, "db-1/db: fsfreeze bc-1") {
			t.Fatalf("exec calls %v", got)
		}
		if f.job(names.BackupJob("bc-1")) == nil {
			t.Fatal("no backup Job after the pre hook")
		}
		f.exec.fail = map[string]string{"db-1": "fsthaw: device busy"}
		f.setPod("bc-1", corev1.PodSucceeded, t0, nil, successStatuses()...)
		f.sync("bc-1")
		f.waitExec()
		f.sync("bc-1")
		s = f.session("bc-1")
		c = cond(t, s.Status.Targets[0].Conditions, v1beta1.PostBackupHookExecutionSucceeded, v1beta1.ConditionFalse)
		contains(t, "message", c.Message, "pod db-1 container db: command terminated with exit code 1: fsthaw: device busy")
		if s.Status.Phase != v1beta1.BackupSessionFailed {
			t.Fatalf("phase %s", s.Status.Phase)
		}
	})
}

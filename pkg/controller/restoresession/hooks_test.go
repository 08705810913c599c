package restoresession

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/internal/controllertest"
	"github.com/stowhq/stow/pkg/jobresult"
	"github.com/stowhq/stow/pkg/names"
)

var receiverHook = v1beta1.Handler{HTTPPost: &v1beta1.HTTPPostAction{
	HTTPGetAction: v1beta1.HTTPGetAction{Host: "receiver", Port: intstr.FromInt32(8080)},
	Body:          `{{ .Invoker.Kind }}/{{ .Invoker.Name }} {{ .Status.Phase }}`}}

func withHooks(pre *v1beta1.Handler, post *v1beta1.PostHookHandler) func(*v1beta1.RestoreSession) {
	return func(rs *v1beta1.RestoreSession) {
		rs.Spec.Hooks = &v1beta1.RestoreHooks{PreRestore: pre, PostRestore: post}
	}
}

func (f *fixture) finishHook(hookType string, ok bool, errMsg string) {
	f.t.Helper()
	controllertest.FinishHookJob(f.t, f.kube, ns, names.HookJob("rs", hookType), ok, errMsg)
	f.resync()
}

func TestRestorePreHookFailurePreventsRestore(t *testing.T) {
	f := newFixture(t, repository("repo"), secret(), pvc("data"),
		newRestore("rs", withHooks(&receiverHook, &v1beta1.PostHookHandler{Handler: receiverHook})))
	f.syncRestore("rs", 2)
	if f.job(names.HookJob("rs", v1beta1.HookPreRestore)) == nil || f.job(names.RestoreJob("rs", 0)) != nil {
		t.Fatal("want the pre hook Job and no restore Job first")
	}
	f.finishHook(v1beta1.HookPreRestore, false, "GET http://receiver:8080: status 503 Service Unavailable")
	f.sync("rs")
	got := f.restore("rs")
	c := cond(t, got.Status.Conditions, v1beta1.PreRestoreHookExecutionSucceeded, v1beta1.ConditionFalse)
	if c.Reason != v1beta1.FailedToExecutePreRestoreHook || got.Status.Phase != v1beta1.RestoreFailed {
		t.Fatalf("condition %+v phase %s", c, got.Status.Phase)
	}
	contains(t, "reason", got.Status.Reason, "preRestore hook failed, nothing was restored: GET http://receiver:8080: status 503")
	if f.job(names.RestoreJob("rs", 0)) != nil || f.job(names.HookJob("rs", v1beta1.HookPostRestore)) != nil {
		t.Fatal("a restore Job or the post hook ran after the pre hook failed")
	}
	if len(got.Status.PausedBackups) != 0 {
		t.Fatalf("backups stay paused: %v", got.Status.PausedBackups)
	}
	if ev := f.events(); !hasEvent(ev, "Warning HookFailed preRestore hook failed") {
		t.Fatalf("events %v", ev)
	}
}

func TestRestorePostHookPolicy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy v1beta1.HookExecutionPolicy
		fail   bool
		runs   bool
	}{
		{"OnSuccess after success", v1beta1.ExecuteOnSuccess, false, true},
		{"OnFailure after success", v1beta1.ExecuteOnFailure, false, false},
		{"OnFailure after a failed step", v1beta1.ExecuteOnFailure, true, true},
		{"OnFinalRetryFailure after a failed step (no retries)", v1beta1.ExecuteOnFinalRetryFailure, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, repository("repo"), secret(), pvc("data"),
				newRestore("rs", withHooks(nil, &v1beta1.PostHookHandler{Handler: receiverHook, ExecutionPolicy: tc.policy})))
			f.syncRestore("rs", 2)
			jobName := names.RestoreJob("rs", 0)
			if tc.fail {
				f.setPod(jobName, corev1.PodFailed, t0, nil,
					terminated("pvc-restore-0", 1, "Error", encode(jobresult.Result{Step: "restore-pvc", Error: "no snapshot"})))
			} else {
				f.setPod(jobName, corev1.PodSucceeded, t0, nil, restoreOK())
			}
			f.sync("rs")
			got := f.restore("rs")
			hj := f.job(names.HookJob("rs", v1beta1.HookPostRestore))
			if !tc.runs {
				c := cond(t, got.Status.Conditions, v1beta1.PostRestoreHookExecutionSucceeded, v1beta1.ConditionTrue)
				contains(t, "message", c.Message, "skipped")
				if hj != nil || got.Status.Phase != v1beta1.RestoreSucceeded {
					t.Fatalf("hook Job %v phase %s", hj != nil, got.Status.Phase)
				}
				return
			}
			if hj == nil || got.Status.Phase.IsFinal() {
				t.Fatalf("hook Job %v, phase %s", hj != nil, got.Status.Phase)
			}
			want := "RestoreSession/rs Succeeded"
			if tc.fail {
				want = "RestoreSession/rs Failed"
			}
			if args := strings.Join(hj.Spec.Template.Spec.Containers[0].Args, " "); !strings.Contains(args, want) {
				t.Fatalf("hook args %q, want %q", args, want)
			}
			f.finishHook(v1beta1.HookPostRestore, false, "boom")
			f.sync("rs")
			got = f.restore("rs")
			cond(t, got.Status.Conditions, v1beta1.PostRestoreHookExecutionSucceeded, v1beta1.ConditionFalse)
			if got.Status.Phase != v1beta1.RestoreFailed {
				t.Fatalf("phase %s", got.Status.Phase)
			}
			if !tc.fail {
				contains(t, "reason", got.Status.Reason, "postRestore hook failed: boom")
			}
		})
	}
}

package hookrun

import (
	"context"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/hook"
	"github.com/stowhq/stow/pkg/names"
)

// CondType is the condition type of a hook type: <Hook>HookExecutionSucceeded.
func CondType(hookType string) string {
	return strings.ToUpper(hookType[:1]) + hookType[1:] + "HookExecutionSucceeded"
}

// Step runs h until it has an outcome and records it in conds (the hook's
// condition, a Warning Event when it failed, the metric). done: the
// condition is recorded (now or before); otherwise ask again after requeue.
func (r *Runner) Step(ctx context.Context, h Hook, conds *[]v1beta1.Condition, now time.Time) (done bool, requeue time.Duration, err error) {
	if v1beta1.HasCondition(*conds, CondType(h.Type)) {
		return true, 0, nil
	}
	res, err := r.Run(ctx, h, now)
	if err != nil || res.State == Running {
		return false, res.Requeue, err
	}
	v1beta1.SetCondition(conds, Condition(h.Type, res), metav1.NewTime(now))
	r.Record(h.Session, h.Type, res, false)
	return true, 0, nil
}

// Post runs the post hook h after a session whose work ended with o, when
// policy says so; a hook its policy skips is recorded True with why.
func (r *Runner) Post(ctx context.Context, h Hook, policy v1beta1.HookExecutionPolicy, o hook.Outcome, conds *[]v1beta1.Condition, now time.Time) (done bool, requeue time.Duration, err error) {
	if v1beta1.HasCondition(*conds, CondType(h.Type)) {
		return true, 0, nil
	}
	if run, why := hook.ShouldRun(policy, o); !run {
		res := Result{State: Succeeded, Message: why}
		v1beta1.SetCondition(conds, Condition(h.Type, res), metav1.NewTime(now))
		r.Record(h.Session, h.Type, res, true)
		return true, 0, nil
	}
	return r.Step(ctx, h, conds, now)
}

// Abort ends a hook that started and has no outcome yet because the
// session's deadline passed: it is stopped and recorded as failed with msg.
// A hook that never started is left unrecorded.
func (r *Runner) Abort(ctx context.Context, h Hook, conds *[]v1beta1.Condition, msg string, now time.Time) error {
	if v1beta1.HasCondition(*conds, CondType(h.Type)) || !r.started(h) {
		return nil
	}
	if err := r.Stop(ctx, h.Session, h.Type); err != nil {
		return err
	}
	res := Result{State: Failed, Message: msg}
	v1beta1.SetCondition(conds, Condition(h.Type, res), metav1.NewTime(now))
	r.Record(h.Session, h.Type, res, false)
	return nil
}

// started tells whether h has a Job or an exec under way.
func (r *Runner) started(h Hook) bool {
	r.mu.Lock()
	_, running := r.execs[execKey(h.Session, h.Type)]
	r.mu.Unlock()
	if running {
		return true
	}
	_, err := r.jobs.Jobs(h.Session.GetNamespace()).Get(names.HookJob(h.Session.GetName(), h.Type))
	return err == nil
}

package restoresession

import (
	"context"
	"time"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/hookrun"
	"github.com/stowhq/stow/pkg/hook"
)

// hookOf is one hook of rs; phase and errMsg are what its templates see as
// .Status.Phase and .Status.Error.
func (c *Controller) hookOf(rs, work *v1beta1.RestoreSession, hookType string, h v1beta1.Handler, phase, errMsg string, now time.Time) hookrun.Hook {
	sum := hook.Summary{
		Name: rs.Name, Namespace: rs.Namespace,
		Invoker: hook.Ref{ApiVersion: v1beta1.SchemeGroupVersion.String(), Kind: v1beta1.KindRestoreSession, Name: rs.Name},
		Status:  hook.Status{Phase: phase, Duration: now.Sub(rs.CreationTimestamp.Time).Round(time.Second).String(), Error: errMsg},
	}
	claim := ""
	if t := work.Spec.Target; t != nil {
		claim = t.Ref.Name
		sum.Target = hook.Ref{ApiVersion: t.Ref.APIVersion, Kind: t.Ref.Kind, Name: t.Ref.Name}
		if sum.Target.ApiVersion == "" {
			sum.Target.ApiVersion = "v1"
		}
		if sum.Target.Kind == "" {
			sum.Target.Kind = v1beta1.KindPersistentVolumeClaim
		}
	}
	out := hookrun.Hook{Session: rs, Type: hookType, Handler: h, Summary: sum, Invoker: rs.Name, Claim: claim}
	if hookType == v1beta1.HookPreRestore && rs.Status.SessionDeadline != nil {
		out.Deadline = rs.Status.SessionDeadline.Time
	}
	return out
}

// preHook runs the preRestore hook of a restore about to start its first
// Job. ready: the hook succeeded (or there is none); otherwise the restore
// waits (requeue) or the hook failed, which fails the restore.
func (c *Controller) preHook(ctx context.Context, rs, work *v1beta1.RestoreSession, now time.Time) (ready bool, requeue time.Duration, err error) {
	h := work.Spec.Hooks
	if h == nil || h.PreRestore == nil {
		return true, 0, nil
	}
	done, requeue, err := c.Hooks.Step(ctx, c.hookOf(rs, work, v1beta1.HookPreRestore, *h.PreRestore, string(v1beta1.RestoreRunning), "", now), &rs.Status.Conditions, now)
	if err != nil || !done {
		return false, requeue, err
	}
	return v1beta1.IsConditionTrue(rs.Status.Conditions, v1beta1.PreRestoreHookExecutionSucceeded), 0, nil
}

// abortPreHook fails a preRestore hook the session's deadline interrupted.
func (c *Controller) abortPreHook(ctx context.Context, rs, work *v1beta1.RestoreSession, now time.Time) error {
	h := work.Spec.Hooks
	if h == nil || h.PreRestore == nil {
		return nil
	}
	return c.Hooks.Abort(ctx, c.hookOf(rs, work, v1beta1.HookPreRestore, *h.PreRestore, string(v1beta1.RestoreRunning), "", now),
		&rs.Status.Conditions, "the session's deadline passed while the hook ran; it was stopped", now)
}

// postHook runs the postRestore hook of a restore whose work is over, as
// its executionPolicy says (a restore has no retries: OnFinalRetryFailure
// is OnFailure); done: its outcome is recorded or it has none to run.
func (c *Controller) postHook(ctx context.Context, rs, work *v1beta1.RestoreSession, now time.Time) (done bool, requeue time.Duration, err error) {
	h := work.Spec.Hooks
	st := &rs.Status
	if h == nil || h.PostRestore == nil || v1beta1.IsConditionFalse(st.Conditions, v1beta1.PreRestoreHookExecutionSucceeded) {
		return true, 0, nil
	}
	failed := v1beta1.ComputeRestoreTargetPhase(*st) != v1beta1.TargetSucceeded || v1beta1.IsConditionTrue(st.Conditions, v1beta1.DeadlineExceeded)
	phase, errMsg := v1beta1.RestoreSucceeded, ""
	if failed {
		view := st.DeepCopy()
		view.Phase = v1beta1.RestoreFailed
		phase, errMsg = v1beta1.RestoreFailed, reasonFor(view)
	}
	hk := c.hookOf(rs, work, v1beta1.HookPostRestore, h.PostRestore.Handler, string(phase), errMsg, now)
	return c.Hooks.Post(ctx, hk, h.PostRestore.ExecutionPolicy, hook.Outcome{Failed: failed}, &st.Conditions, now)
}

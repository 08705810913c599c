package backupsession

import (
	"context"
	"time"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/hookrun"
	"github.com/stowhq/stow/pkg/hook"
)

// hookOf is one hook of s; phase and errMsg are what its templates see as
// .Status.Phase and .Status.Error.
func (c *Controller) hookOf(s *v1beta1.BackupSession, bc *v1beta1.BackupConfiguration, hookType string, h v1beta1.Handler, phase, errMsg string, now time.Time) hookrun.Hook {
	target := targetRef(bc)
	sum := hook.Summary{
		Name: s.Name, Namespace: s.Namespace,
		Invoker: hook.Ref{ApiVersion: v1beta1.SchemeGroupVersion.String(), Kind: v1beta1.KindBackupConfiguration, Name: bc.Name},
		Target:  hook.Ref{ApiVersion: target.APIVersion, Kind: target.Kind, Name: target.Name},
		Status:  hook.Status{Phase: phase, Duration: duration(s, now), Error: errMsg},
	}
	if sum.Target.ApiVersion == "" {
		sum.Target.ApiVersion = "v1"
	}
	for _, t := range s.Status.Targets {
		for _, st := range t.Stats {
			sum.Snapshots = append(sum.Snapshots, st.Snapshots...)
		}
	}
	out := hookrun.Hook{Session: s, Type: hookType, Handler: h, Summary: sum, Invoker: bc.Name, Claim: target.Name}
	if hookType == v1beta1.HookPreBackup && s.Status.SessionDeadline != nil {
		out.Deadline = s.Status.SessionDeadline.Time
	}
	return out
}

// preHook runs the preBackup hook of a session about to start its Job.
// ready: the hook succeeded (or there is none) and the Job may start;
// otherwise the session waits (requeue) or the hook failed, which fails the
// target.
func (c *Controller) preHook(ctx context.Context, s *v1beta1.BackupSession, bc *v1beta1.BackupConfiguration, now time.Time) (ready bool, requeue time.Duration, err error) {
	h := bc.Spec.Hooks
	if h == nil || h.PreBackup == nil {
		return true, 0, nil
	}
	t := &s.Status.Targets[0]
	done, requeue, err := c.Hooks.Step(ctx, c.hookOf(s, bc, v1beta1.HookPreBackup, *h.PreBackup, string(v1beta1.BackupSessionRunning), "", now), &t.Conditions, now)
	if err != nil || !done {
		return false, requeue, err
	}
	return v1beta1.IsConditionTrue(t.Conditions, v1beta1.PreBackupHookExecutionSucceeded), 0, nil
}

// abortPreHook fails a preBackup hook the session's deadline interrupted.
func (c *Controller) abortPreHook(ctx context.Context, s *v1beta1.BackupSession, bc *v1beta1.BackupConfiguration, now time.Time) error {
	h := bc.Spec.Hooks
	if h == nil || h.PreBackup == nil || len(s.Status.Targets) == 0 {
		return nil
	}
	return c.Hooks.Abort(ctx, c.hookOf(s, bc, v1beta1.HookPreBackup, *h.PreBackup, string(v1beta1.BackupSessionRunning), "", now),
		&s.Status.Targets[0].Conditions, "the session's deadline passed while the hook ran; it was stopped", now)
}

// postHook runs the postBackup hook of a session whose work is over, as
// its executionPolicy says; done: its outcome is recorded (or it has
// none to run: no hook, a skipped session, a failed pre hook).
func (c *Controller) postHook(ctx context.Context, s *v1beta1.BackupSession, bc *v1beta1.BackupConfiguration, now time.Time) (done bool, requeue time.Duration, err error) {
	h := bc.Spec.Hooks
	st := &s.Status
	if h == nil || h.PostBackup == nil || len(st.Targets) == 0 || v1beta1.IsConditionTrue(st.Conditions, v1beta1.BackupSkipped) {
		return true, 0, nil
	}
	t := &st.Targets[0]
	if v1beta1.IsConditionFalse(t.Conditions, v1beta1.PreBackupHookExecutionSucceeded) {
		return true, 0, nil // Stash's rule: no post hook after a failed pre hook
	}
	recompute(s)
	failed := !v1beta1.BackupSucceeded(*st)
	phase, errMsg := v1beta1.BackupSessionSucceeded, ""
	if failed {
		view := s.DeepCopy()
		view.Status.Phase = v1beta1.BackupSessionFailed
		phase, errMsg = v1beta1.BackupSessionFailed, reasonFor(view)
	}
	hk := c.hookOf(s, bc, v1beta1.HookPostBackup, h.PostBackup.Handler, string(phase), errMsg, now)
	return c.Hooks.Post(ctx, hk, h.PostBackup.ExecutionPolicy, hook.Outcome{Failed: failed, RetriesLeft: bc.RetriesLeft(s)}, &t.Conditions, now)
}

package restoresession

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/executor"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/controller/jobrun"
	"github.com/stowhq/stow/pkg/controller/session"
	"github.com/stowhq/stow/pkg/names"
)

// hostFor is the stats hostname of a restore ordinal: the restore host
// (alias or host-0), suffixed with the ordinal when there are several Jobs.
func hostFor(rs *v1beta1.RestoreSession, ordinal, n int) string {
	host := v1beta1.DefaultHost
	if rs.Spec.Target != nil {
		host = v1beta1.Host(rs.Spec.Target.Alias)
	}
	if n > 1 {
		return fmt.Sprintf("%s-%d", host, ordinal)
	}
	return host
}

// watch is the watchdog of a started restore. Ordinals run one at a time:
// the Job of ordinal i is created when ordinal i-1 has reported.
func (c *Controller) watch(ctx context.Context, rs, work *v1beta1.RestoreSession, repo *v1beta1.Repository, now time.Time) (requeueAfter time.Duration, err error) {
	st := &rs.Status
	n := int(ptrOr(st.TotalHosts, 1))
	for i := 0; i < n; i++ {
		host := hostFor(rs, i, n)
		hs := st.HostStats(host)
		if hs != nil && hs.Phase != v1beta1.HostRunning {
			continue // this ordinal has reported
		}
		jobName := names.RestoreJob(rs.Name, i)
		if hs == nil {
			// Not started yet: the previous ordinals have all reported.
			if repo == nil {
				c.disrupt(rs, v1beta1.ExecutorDeleted, fmt.Sprintf("Repository %s/%s was deleted during the restore", work.Spec.Repository.Namespace, work.Spec.Repository.Name), now)
				return 0, nil
			}
			jobs, _, _, err := c.build(ctx, work, repo)
			if err != nil || i >= len(jobs) {
				if err == nil {
					err = fmt.Errorf("the Task produced %d Jobs, expected %d", len(jobs), n)
				}
				c.disrupt(rs, v1beta1.ExecutorTerminatedBeforeCompletion, err.Error(), now)
				return 0, nil
			}
			_, after, err := c.createJob(ctx, rs, repo, jobs[i], i, n, now)
			if err != nil {
				if jobrun.Permanent(err) {
					c.disrupt(rs, v1beta1.ExecutorTerminatedBeforeCompletion, err.Error(), now)
					return 0, nil
				}
				return 0, err
			}
			return after, nil
		}
		obs, recheck, err := c.Jobs.Watch(ctx, rs, jobName, now)
		if err != nil {
			return 0, err
		}
		switch obs.State {
		case executor.Running:
			return recheck, nil
		case executor.Pending:
			return internal.Sooner(recheck, obs.RecheckAfter), nil
		case executor.PendingTooLong, executor.CannotStart, executor.Deleted:
			c.disrupt(rs, obs.Reason, obs.Message, now)
			return 0, nil
		}
		c.applyResult(rs, host, obs)
		// Loop on: the next ordinal may start now.
	}
	return 0, nil
}

// applyResult writes one host's stats from its Job's termination messages.
func (c *Controller) applyResult(rs *v1beta1.RestoreSession, host string, obs executor.Observation) {
	h := v1beta1.HostRestoreStats{Hostname: host, Phase: v1beta1.HostSucceeded}
	reported := false
	for _, res := range obs.Results {
		if res.Step != v1beta1.FunctionUpdateStatus || res.StashOutput {
			reported = true
		}
		if res.Duration != "" {
			h.Duration = res.Duration
		}
		if res.Error != "" && h.Error == "" {
			h.Error = res.Error
		}
	}
	switch {
	case h.Error != "":
	case obs.State == executor.Failed:
		h.Error = obs.Message
	case !reported:
		h.Error = "the restore Job completed but its restore step reported no result"
	}
	if h.Error != "" {
		h.Phase = v1beta1.HostFailed
		c.Recorder.Eventf(rs, corev1.EventTypeWarning, EventHostRestoreFailed, "Restore of host %s failed: %s", host, h.Error)
	} else {
		c.Recorder.Eventf(rs, corev1.EventTypeNormal, EventHostRestoreSucceeded, "Restore of host %s succeeded", host)
	}
	rs.Status.SetHostStats(h)
}

func (c *Controller) disrupt(rs *v1beta1.RestoreSession, reason, msg string, now time.Time) {
	c.setCond(rs, v1beta1.RestoreDisrupted, v1beta1.ConditionTrue, reason, msg, now)
	c.Recorder.Event(rs, corev1.EventTypeWarning, EventDisrupted, msg)
}

// finalPhase is the phase rs will have once MetricsPushed=True is recorded.
func finalPhase(rs *v1beta1.RestoreSession) v1beta1.RestorePhase {
	st := rs.Status.DeepCopy()
	v1beta1.SetCondition(&st.Conditions, v1beta1.Condition{Type: v1beta1.MetricsPushed, Status: v1beta1.ConditionTrue}, metav1.Time{})
	return v1beta1.ComputeRestoreSessionPhase(*st)
}

// finalize pushes metrics whose success is the final phase, sets the final
// phase, and resumes the paused backups.
func (c *Controller) finalize(ctx context.Context, rs *v1beta1.RestoreSession, repo *v1beta1.Repository, now time.Time) {
	st := &rs.Status
	c.setCond(rs, v1beta1.RestoreCompleted, v1beta1.ConditionTrue, v1beta1.PostRestoreTasksExecuted, "every host reported or the restore was stopped", now)
	if !v1beta1.HasCondition(st.Conditions, v1beta1.MetricsPushed) {
		view := rs.DeepCopy()
		view.Status.Phase = finalPhase(rs)
		view.Status.SessionDuration = now.Sub(rs.CreationTimestamp.Time).Round(time.Second).String()
		succeeded := view.Status.Phase == v1beta1.RestoreSucceeded
		if err := c.Pusher.RestoreSessionFinished(ctx, view, repo, succeeded); err != nil {
			c.setCond(rs, v1beta1.MetricsPushed, v1beta1.ConditionFalse, v1beta1.FailedToPushMetrics, fmt.Sprintf("pushing restore metrics failed: %v", err), now)
		} else {
			c.setCond(rs, v1beta1.MetricsPushed, v1beta1.ConditionTrue, v1beta1.SuccessfullyPushedMetrics, "restore metrics pushed", now)
		}
	}
	st.Phase = v1beta1.ComputeRestoreSessionPhase(*st)
	if !st.Phase.IsFinal() {
		return
	}
	st.SessionDuration = now.Sub(rs.CreationTimestamp.Time).Round(time.Second).String()
	st.PausedBackups = nil
	v1beta1.RemoveCondition(&st.Conditions, v1beta1.ExecutorWaiting)
	st.Reason = reasonFor(st)
	if st.Phase == v1beta1.RestoreSucceeded {
		c.Recorder.Eventf(rs, corev1.EventTypeNormal, EventSucceeded, "Restore succeeded in %s", st.SessionDuration)
	} else {
		c.Recorder.Eventf(rs, corev1.EventTypeWarning, EventFailed, "Restore ended %s: %s", st.Phase, st.Reason)
	}
}

// reasonFor is the one-line cause of a restore that did not succeed.
func reasonFor(st *v1beta1.RestoreSessionStatus) string {
	if st.Phase == v1beta1.RestoreSucceeded {
		return ""
	}
	if m, ok := session.FirstCause(st.Conditions,
		session.Cause{Type: v1beta1.DeadlineExceeded, Status: v1beta1.ConditionTrue},
		session.Cause{Type: v1beta1.PreRestoreHookExecutionSucceeded, Status: v1beta1.ConditionFalse, Prefix: "preRestore hook failed, nothing was restored: "},
		session.Cause{Type: v1beta1.RestoreExecutorEnsured, Status: v1beta1.ConditionFalse},
		session.Cause{Type: v1beta1.RestoreDisrupted, Status: v1beta1.ConditionTrue}); ok {
		return m
	}
	for _, h := range st.Stats {
		if h.Phase == v1beta1.HostFailed || h.Phase == v1beta1.HostUnknown {
			return fmt.Sprintf("host %s: %s", h.Hostname, h.Error)
		}
	}
	if m, ok := session.FirstCause(st.Conditions,
		session.Cause{Type: v1beta1.PostRestoreHookExecutionSucceeded, Status: v1beta1.ConditionFalse, Prefix: "postRestore hook failed: "},
		session.Cause{Type: v1beta1.MetricsPushed, Status: v1beta1.ConditionFalse}); ok {
		return m
	}
	return "the restore did not complete"
}

package backupsession

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/controller/session"
	"github.com/stowhq/stow/pkg/names"
)

// finalPhase is the phase s will have once MetricsPushed=True is recorded.
func finalPhase(s *v1beta1.BackupSession) v1beta1.BackupSessionPhase {
	st := s.Status.DeepCopy()
	v1beta1.SetCondition(&st.Conditions, v1beta1.Condition{Type: v1beta1.MetricsPushed, Status: v1beta1.ConditionTrue}, metav1.Time{})
	return v1beta1.ComputeBackupSessionPhase(*st)
}

// finalize runs the end of a completed or skipped session: history cleanup,
// metrics (whose success is the final phase), and the final phase itself.
func (c *Controller) finalize(ctx context.Context, s *v1beta1.BackupSession, bc *v1beta1.BackupConfiguration, repo *v1beta1.Repository, now time.Time) error {
	st := &s.Status
	skipped := v1beta1.IsConditionTrue(st.Conditions, v1beta1.BackupSkipped)
	recompute(s)
	if !v1beta1.HasCondition(st.Conditions, v1beta1.BackupHistoryCleaned) {
		if err := c.cleanHistory(ctx, s, bc, finalPhase(s)); err != nil {
			c.setCond(s, v1beta1.BackupHistoryCleaned, v1beta1.ConditionFalse, v1beta1.FailedToCleanBackupHistory, err.Error(), now)
		} else {
			c.setCond(s, v1beta1.BackupHistoryCleaned, v1beta1.ConditionTrue, v1beta1.SuccessfullyCleanedBackupHistory,
				fmt.Sprintf("kept at most %d completed sessions", bc.HistoryLimit()), now)
		}
	}
	if !v1beta1.HasCondition(st.Conditions, v1beta1.MetricsPushed) {
		view := s.DeepCopy()
		view.Status.Phase = finalPhase(s)
		view.Status.SessionDuration = duration(s, now)
		if skipped {
			// A failed push must not turn a skip into a failure: no condition.
			if err := c.Pusher.BackupSessionSkipped(ctx, bc, repo, view); err != nil {
				c.Recorder.Eventf(s, corev1.EventTypeWarning, internal.ReasonMetricsFailed, "Pushing the skipped-session metric failed: %v", err)
			} else {
				c.setCond(s, v1beta1.MetricsPushed, v1beta1.ConditionTrue, v1beta1.SuccessfullyPushedMetrics, "skipped-session metric pushed", now)
			}
		} else {
			succeeded := view.Status.Phase == v1beta1.BackupSessionSucceeded
			if err := c.Pusher.BackupSessionFinished(ctx, bc, repo, view, succeeded); err != nil {
				c.setCond(s, v1beta1.MetricsPushed, v1beta1.ConditionFalse, v1beta1.FailedToPushMetrics, fmt.Sprintf("pushing session metrics failed: %v", err), now)
			} else {
				c.setCond(s, v1beta1.MetricsPushed, v1beta1.ConditionTrue, v1beta1.SuccessfullyPushedMetrics, "session metrics pushed", now)
			}
		}
	}
	recompute(s)
	if !st.Phase.IsFinal() {
		return nil
	}
	st.SessionDuration = duration(s, now)
	st.Reason = reasonFor(s)
	switch st.Phase {
	case v1beta1.BackupSessionSucceeded:
		c.Recorder.Eventf(s, corev1.EventTypeNormal, EventSucceeded, "Backup succeeded in %s", st.SessionDuration)
	case v1beta1.BackupSessionSkipped:
		c.Recorder.Event(s, corev1.EventTypeNormal, EventSkipped, st.Reason)
	default:
		c.Recorder.Eventf(s, corev1.EventTypeWarning, EventFailed, "Backup failed: %s", st.Reason)
	}
	return nil
}

// reasonFor is the one-line cause of a Failed or Skipped session.
func reasonFor(s *v1beta1.BackupSession) string {
	st := s.Status
	switch st.Phase {
	case v1beta1.BackupSessionSkipped:
		if c := v1beta1.GetCondition(st.Conditions, v1beta1.BackupSkipped); c != nil {
			return c.Message
		}
		return "skipped"
	case v1beta1.BackupSessionFailed:
	default:
		return ""
	}
	if m, ok := session.FirstCause(st.Conditions, session.Cause{Type: v1beta1.DeadlineExceeded, Status: v1beta1.ConditionTrue}); ok {
		return m
	}
	for _, t := range st.Targets {
		if m, ok := session.FirstCause(t.Conditions,
			session.Cause{Type: v1beta1.PreBackupHookExecutionSucceeded, Status: v1beta1.ConditionFalse, Prefix: "preBackup hook failed, no backup was taken: "},
			session.Cause{Type: v1beta1.BackupExecutorEnsured, Status: v1beta1.ConditionFalse},
			session.Cause{Type: v1beta1.BackupDisrupted, Status: v1beta1.ConditionTrue}); ok {
			return m
		}
		for _, h := range t.Stats {
			if h.Phase == v1beta1.HostFailed {
				return fmt.Sprintf("host %s: %s", h.Hostname, h.Error)
			}
		}
		if m, ok := session.FirstCause(t.Conditions, session.Cause{Type: v1beta1.PostBackupHookExecutionSucceeded, Status: v1beta1.ConditionFalse,
			Prefix: "postBackup hook failed (the snapshot stays): "}); ok {
			return m
		}
	}
	var steps []session.Cause
	for _, typ := range []string{v1beta1.BackendRepositoryInitialized, v1beta1.RetentionPolicyApplied, v1beta1.RepositoryIntegrityVerified,
		v1beta1.RepositoryMetricsPushed, v1beta1.BackupHistoryCleaned, v1beta1.MetricsPushed} {
		steps = append(steps, session.Cause{Type: typ, Status: v1beta1.ConditionFalse, Prefix: typ + ": "})
	}
	if m, ok := session.FirstCause(st.Conditions, steps...); ok {
		return m
	}
	if v1beta1.IsConditionTrue(st.Conditions, v1beta1.ExecutorWaiting) {
		return "the session never started: " + v1beta1.GetCondition(st.Conditions, v1beta1.ExecutorWaiting).Message
	}
	return "the backup did not complete"
}

// cleanHistory keeps the newest BackupHistoryLimit sessions of the
// configuration, plus the newest completed one, and never deletes a Pending
// or Running session. current is the phase s is about to reach.
func (c *Controller) cleanHistory(ctx context.Context, s *v1beta1.BackupSession, bc *v1beta1.BackupConfiguration, current v1beta1.BackupSessionPhase) error {
	all, err := c.BackupSessions.BackupSessions(s.Namespace).List(labels.Everything())
	if err != nil {
		return err
	}
	var mine []*v1beta1.BackupSession
	for _, o := range all {
		if o.Spec.Invoker.Name == bc.Name {
			mine = append(mine, o)
		}
	}
	sort.Slice(mine, func(i, j int) bool { return older(mine[j], mine[i]) }) // newest first
	phase := func(o *v1beta1.BackupSession) v1beta1.BackupSessionPhase {
		if o.Name == s.Name {
			return current
		}
		return o.Status.Phase
	}
	lastCompleted := ""
	for _, o := range mine {
		if p := phase(o); p == v1beta1.BackupSessionSucceeded || p == v1beta1.BackupSessionFailed {
			lastCompleted = o.Name
			break
		}
	}
	limit := int(bc.HistoryLimit())
	bg := metav1.DeletePropagationBackground
	var failed []string
	for i, o := range mine {
		if i < limit || o.Name == s.Name || !phase(o).IsFinal() || (o.Name == lastCompleted && limit > 0) {
			continue
		}
		err := c.Stow.StowV1beta1().BackupSessions(o.Namespace).Delete(ctx, o.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
		if err != nil && !apierrors.IsNotFound(err) {
			failed = append(failed, fmt.Sprintf("%s: %v", o.Name, err))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("could not delete old sessions: %s", strings.Join(failed, "; "))
	}
	return nil
}

// maybeRetry creates the retry of a Failed session (spec.retryConfig of its
// BackupConfiguration): nextRetry is set
// first, and the new session is created once it has passed. Retries are
// bounded by the configuration, not by the session alone: a session's
// retryLeft counts only up to retryConfig.maxRetry (a hand-written
// retryLeft: 1000000 gets no more), and retries are at least
// v1beta1.MinRetryDelay apart, so no object can make Stow create Jobs in a
// loop.
func (c *Controller) maybeRetry(ctx context.Context, cur *v1beta1.BackupSession, bc *v1beta1.BackupConfiguration, now time.Time) (requeueAfter time.Duration, err error) {
	st := cur.Status
	left := bc.RetriesLeft(cur)
	if st.Phase != v1beta1.BackupSessionFailed || left <= 0 || (st.Retried != nil && *st.Retried) {
		return 0, nil
	}
	s := cur.DeepCopy()
	key := s.Namespace + "/" + s.Name
	if s.Status.NextRetry == nil {
		delay := bc.RetryDelay()
		t := metav1.NewTime(now.Add(delay))
		s.Status.NextRetry = &t
		c.Recorder.Eventf(s, corev1.EventTypeNormal, EventRetry, "Retrying in %s (%d retries left)", delay, left)
		if err := c.updateStatus(ctx, cur, s); err != nil {
			return 0, err
		}
		return delay, nil
	}
	if wait := s.Status.NextRetry.Sub(now); wait > 0 {
		return wait, nil
	}
	exists, err := c.retryExists(ctx, s)
	if err != nil {
		return 0, err
	}
	if !exists {
		next := &v1beta1.BackupSession{
			ObjectMeta: metav1.ObjectMeta{
				Name:            names.BackupSession(bc.Name, now.Unix()),
				Namespace:       s.Namespace,
				Labels:          sessionLabels(bc),
				Annotations:     map[string]string{v1beta1.AnnotationRetryOf: s.Name},
				OwnerReferences: []metav1.OwnerReference{v1beta1.OwnerRef(v1beta1.KindBackupConfiguration, bc.Name, bc.UID)},
			},
			Spec: v1beta1.BackupSessionSpec{
				Invoker:   v1beta1.BackupInvokerRef{APIGroup: v1beta1.SchemeGroupVersion.Group, Kind: v1beta1.KindBackupConfiguration, Name: bc.Name},
				RetryLeft: left - 1,
			},
		}
		if _, err := c.Stow.StowV1beta1().BackupSessions(s.Namespace).Create(ctx, next, metav1.CreateOptions{}); err != nil {
			return 0, fmt.Errorf("create retry of BackupSession %s: %w", key, err)
		}
		c.Recorder.Eventf(s, corev1.EventTypeNormal, EventRetry, "Created retry session %s (%d retries left)", next.Name, next.Spec.RetryLeft)
	}
	t := true
	s.Status.Retried = &t
	return 0, c.updateStatus(ctx, cur, s)
}

// retryExists tells whether a retry of s was already created (a previous
// sync may have lost its status write).
// The API is asked, not the cache, which may not hold it yet.
func (c *Controller) retryExists(ctx context.Context, s *v1beta1.BackupSession) (bool, error) {
	all, err := c.Stow.StowV1beta1().BackupSessions(s.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, fmt.Errorf("list BackupSessions: %w", err)
	}
	for _, o := range all.Items {
		if o.Annotations[v1beta1.AnnotationRetryOf] == s.Name {
			return true, nil
		}
	}
	return false, nil
}

// sessionLabels are the configuration's labels plus Stow's session labels.
func sessionLabels(bc *v1beta1.BackupConfiguration) map[string]string {
	l := map[string]string{}
	for k, v := range bc.Labels {
		l[k] = v
	}
	for k, v := range names.SessionLabels(bc) {
		l[k] = v
	}
	return l
}

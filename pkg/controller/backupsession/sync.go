package backupsession

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/claim"
	"github.com/stowhq/stow/pkg/controller/executor"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/controller/jobrun"
	"github.com/stowhq/stow/pkg/controller/podguard"
	"github.com/stowhq/stow/pkg/names"
	"github.com/stowhq/stow/pkg/podpolicy"
)

// Event reasons (for humans; Stash's spellings where Stash had one).
const (
	EventHostBackupSucceeded = "Host Backup Succeeded"
	EventHostBackupFailed    = "Host Backup Failed"
	EventJobCreated          = "BackupJobCreated"
	EventExecutorFailed      = "BackupExecutorFailed"
	EventDisrupted           = "BackupDisrupted"
	EventSucceeded           = "BackupSessionSucceeded"
	EventFailed              = "BackupSessionFailed"
	EventSkipped             = "BackupSessionSkipped"
	EventRetry               = "BackupSessionRetry"
	EventInvalid             = "InvalidBackupSession"
	EventRecordRefused       = "SnapshotRecordRefused"
)

// sync reconciles one BackupSession from observed state; it is idempotent.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	cur, found, err := internal.Lookup(key, func(ns, name string) (*v1beta1.BackupSession, error) {
		return c.BackupSessions.BackupSessions(ns).Get(name)
	})
	if !found {
		c.Writes.Forget(key)
		return 0, err
	}
	if c.Writes.Stale(key, cur.ResourceVersion) {
		return internal.StaleRequeue, nil
	}
	s := cur.DeepCopy()
	now := c.Clock.Now()
	logger := klog.FromContext(ctx).WithValues("backupsession", key)
	if msg := v1beta1.DecodeError(cur); msg != "" {
		return 0, c.failUnreadable(ctx, cur, s, msg, now)
	}

	bc, err := c.invoker(ctx, cur, s, now)
	if bc == nil || err != nil {
		return 0, err
	}
	repo, _ := c.Repositories.Repositories(bc.Spec.Repository.Namespace).Get(bc.Spec.Repository.Name)

	if s.Status.Phase.IsFinal() {
		if err := c.endInterim(ctx, cur, bc); err != nil {
			return 0, err
		}
		return c.maybeRetry(ctx, cur, bc, now)
	}

	st := &s.Status
	internal.SetSessionDeadline(&st.SessionDeadline, s.CreationTimestamp, bc.Spec.TimeOut)
	initiated, completed, after, err := c.progress(ctx, s, bc, repo, now)
	if err != nil {
		return 0, err
	}
	if !completed && st.SessionDeadline != nil && !now.Before(st.SessionDeadline.Time) {
		if err := c.expire(ctx, s, bc, initiated, now); err != nil {
			return 0, err
		}
		completed = true
	}
	if !completed && !initiated {
		if completed, after, err = c.start(ctx, s, bc, repo, now); err != nil {
			return 0, err
		}
	}
	if completed {
		done, wait, err := c.end(ctx, s, bc, repo, now)
		if err != nil {
			return 0, err
		}
		if !done {
			recompute(s)
			return wait, c.updateStatus(ctx, cur, s)
		}
	} else if st.SessionDeadline != nil {
		after = internal.Sooner(after, st.SessionDeadline.Sub(now))
	}
	recompute(s)
	if st.Phase.IsFinal() {
		logger.V(2).Info("BackupSession finished", "phase", st.Phase, "reason", st.Reason)
	}
	if err := c.updateStatus(ctx, cur, s); err != nil {
		return 0, err
	}
	return after, nil
}

// invoker is s's BackupConfiguration, defaulted. A session whose
// configuration is gone cannot run: it fails (its Job stopped) and invoker
// returns nil, as it does once such a session is final.
func (c *Controller) invoker(ctx context.Context, cur, s *v1beta1.BackupSession, now time.Time) (*v1beta1.BackupConfiguration, error) {
	ns := s.Namespace
	bcCached, err := c.BackupConfigurations.BackupConfigurations(ns).Get(s.Spec.Invoker.Name)
	if apierrors.IsNotFound(err) {
		if s.Status.Phase.IsFinal() {
			return nil, nil
		}
		if err := executor.StopJob(ctx, c.Kube, ns, names.BackupJob(s.Name)); err != nil {
			return nil, err
		}
		s.Status.Phase = v1beta1.BackupSessionFailed
		s.Status.Reason = fmt.Sprintf("BackupConfiguration %s/%s not found", ns, s.Spec.Invoker.Name)
		s.Status.SessionDuration = duration(s, now)
		c.Recorder.Event(s, corev1.EventTypeWarning, EventFailed, s.Status.Reason)
		return nil, c.updateStatus(ctx, cur, s)
	}
	if err != nil {
		return nil, err
	}
	bc := bcCached.DeepCopy()
	v1beta1.DefaultBackupConfiguration(bc)
	return bc, nil
}

// progress watches the Job of a started session and reports whether the
// session has started and whether it is complete (done, skipped or out of
// time); after is when the Job watch wants to look again.
func (c *Controller) progress(ctx context.Context, s *v1beta1.BackupSession, bc *v1beta1.BackupConfiguration, repo *v1beta1.Repository, now time.Time) (initiated, completed bool, after time.Duration, err error) {
	st := &s.Status
	initiated = len(st.Targets) > 0 && v1beta1.HasCondition(st.Targets[0].Conditions, v1beta1.BackupExecutorEnsured)
	if initiated && !v1beta1.BackupTargetsCompleted(st.Targets) {
		if after, err = c.watch(ctx, s, bc, repo, now); err != nil {
			return false, false, 0, err
		}
	}
	recompute(s)
	completed = v1beta1.BackupTargetsCompleted(st.Targets) ||
		v1beta1.IsConditionTrue(st.Conditions, v1beta1.DeadlineExceeded) ||
		v1beta1.IsConditionTrue(st.Conditions, v1beta1.BackupSkipped)
	return initiated, completed, after, nil
}

// start begins a session that has not started: it is skipped when
// skipReason says another backup should run instead, otherwise its Job is
// started. It reports whether the session is complete already.
func (c *Controller) start(ctx context.Context, s *v1beta1.BackupSession, bc *v1beta1.BackupConfiguration, repo *v1beta1.Repository, now time.Time) (completed bool, after time.Duration, err error) {
	if why := c.skipReason(s, bc); why != "" {
		c.setCond(s, v1beta1.BackupSkipped, v1beta1.ConditionTrue, v1beta1.SkippedTakingNewBackup, why, now)
		recompute(s)
		return true, 0, nil
	}
	if after, err = c.initiate(ctx, s, bc, repo, now); err != nil {
		return false, 0, err
	}
	recompute(s)
	return v1beta1.BackupTargetsCompleted(s.Status.Targets), after, nil
}

// expire ends a session past its timeOut: the pre hook is aborted and a
// started Job stopped, so nothing of it keeps running after its deadline.
func (c *Controller) expire(ctx context.Context, s *v1beta1.BackupSession, bc *v1beta1.BackupConfiguration, initiated bool, now time.Time) error {
	msg := fmt.Sprintf("the session did not complete within timeOut %s", internal.TimeOutOf(s.CreationTimestamp, s.Status.SessionDeadline))
	if err := c.abortPreHook(ctx, s, bc, now); err != nil {
		return err
	}
	if initiated {
		if err := executor.StopJob(ctx, c.Kube, s.Namespace, names.BackupJob(s.Name)); err != nil {
			return err
		}
		msg += "; its Job was stopped"
	}
	c.setCond(s, v1beta1.DeadlineExceeded, v1beta1.ConditionTrue, v1beta1.FailedToCompleteWithinDeadline, msg, now)
	c.Recorder.Event(s, corev1.EventTypeWarning, internal.ReasonDeadlineExceeded, msg)
	return nil
}

// end runs the post hook of a completed session and then finalizes it. While
// the hook runs it returns done=false and when to look again: the session
// finalizes once the hook has an outcome.
func (c *Controller) end(ctx context.Context, s *v1beta1.BackupSession, bc *v1beta1.BackupConfiguration, repo *v1beta1.Repository, now time.Time) (done bool, wait time.Duration, err error) {
	done, wait, err = c.postHook(ctx, s, bc, now)
	if err != nil || !done {
		return done, wait, err
	}
	return true, 0, c.finalize(ctx, s, bc, repo, now)
}

// recompute derives target and session phases from conditions and stats.
func recompute(s *v1beta1.BackupSession) {
	for i := range s.Status.Targets {
		s.Status.Targets[i].Phase = v1beta1.ComputeBackupTargetPhase(s.Status.Targets[i])
	}
	s.Status.Phase = v1beta1.ComputeBackupSessionPhase(s.Status)
}

func (c *Controller) setCond(s *v1beta1.BackupSession, typ string, status v1beta1.ConditionStatus, reason, msg string, now time.Time) {
	v1beta1.SetCondition(&s.Status.Conditions, v1beta1.Condition{Type: typ, Status: status, Reason: reason, Message: msg}, metav1.NewTime(now))
}

func setTargetCond(t *v1beta1.BackupTargetStatus, typ string, status v1beta1.ConditionStatus, reason, msg string, now time.Time) {
	v1beta1.SetCondition(&t.Conditions, v1beta1.Condition{Type: typ, Status: status, Reason: reason, Message: msg}, metav1.NewTime(now))
}

// updateStatus writes s.Status when it differs from orig. The operator is the
// only writer of session status (Jobs report through termination messages),
// so on a conflict the computed status is put on the newest object.
func (c *Controller) updateStatus(ctx context.Context, orig, s *v1beta1.BackupSession) error {
	if equality.Semantic.DeepEqual(orig.Status, s.Status) {
		return nil
	}
	client := c.Stow.StowV1beta1().BackupSessions(s.Namespace)
	return internal.UpdateSessionStatus(c.Writes, s, orig.Status.Phase.IsFinal(),
		func(obj *v1beta1.BackupSession) bool { return obj.Status.Phase.IsFinal() },
		func(obj *v1beta1.BackupSession) { obj.Status = s.Status },
		func() (*v1beta1.BackupSession, error) { return client.Get(ctx, s.Name, metav1.GetOptions{}) },
		func(obj *v1beta1.BackupSession) error {
			_, err := client.UpdateStatus(ctx, obj, metav1.UpdateOptions{})
			return err
		})
}

func duration(s *v1beta1.BackupSession, now time.Time) string {
	return now.Sub(s.CreationTimestamp.Time).Round(time.Second).String()
}

// failUnreadable ends a session the operator cannot decode (a stand-in, see
// pkg/lenient): it never runs, it fails with the cause naming the field, and
// no retry follows. Its Job, if one was started, is stopped.
func (c *Controller) failUnreadable(ctx context.Context, cur, s *v1beta1.BackupSession, msg string, now time.Time) error {
	if s.Status.Phase == v1beta1.BackupSessionFailed && s.Status.Reason == msg {
		return nil
	}
	if err := executor.StopJob(ctx, c.Kube, s.Namespace, names.BackupJob(s.Name)); err != nil {
		return err
	}
	c.setCond(s, v1beta1.ValidationPassed, v1beta1.ConditionFalse, v1beta1.ResourceValidationFailed, msg, now)
	s.Status.Phase = v1beta1.BackupSessionFailed
	s.Status.Reason = msg
	s.Status.SessionDuration = duration(s, now)
	c.Recorder.Event(s, corev1.EventTypeWarning, EventInvalid, msg)
	return c.updateStatus(ctx, cur, s)
}

// skipReason returns why a session that has not started must be Skipped, or "".
func (c *Controller) skipReason(s *v1beta1.BackupSession, bc *v1beta1.BackupConfiguration) string {
	if msg := v1beta1.DecodeError(bc); msg != "" {
		return fmt.Sprintf("Skipped taking backup. Reason: BackupConfiguration %s/%s is invalid: %s", bc.Namespace, bc.Name, msg)
	}
	if rs := c.pausingRestore(bc); rs != "" {
		return fmt.Sprintf("Skipped taking backup. Reason: BackupConfiguration %s/%s is paused by restore %s.", bc.Namespace, bc.Name, rs)
	}
	if bc.Status.Phase != v1beta1.BackupInvokerReady {
		phase := string(bc.Status.Phase)
		if phase == "" {
			phase = "not yet reconciled"
		}
		return fmt.Sprintf("Skipped taking backup. Reason: BackupConfiguration %s/%s is not ready (%s).", bc.Namespace, bc.Name, phase)
	}
	others, _ := c.BackupSessions.BackupSessions(s.Namespace).List(labels.Everything())
	for _, o := range others {
		if o.Name != s.Name && o.Spec.Invoker.Name == bc.Name && o.Status.Phase == v1beta1.BackupSessionRunning {
			return fmt.Sprintf("Skipped taking new backup. Reason: Previous BackupSession: %s is %q.", o.Name, o.Status.Phase)
		}
	}
	return ""
}

// pausingRestore names an unfinished RestoreSession that lists bc in
// status.pausedBackups, or "".
func (c *Controller) pausingRestore(bc *v1beta1.BackupConfiguration) string {
	rss, _ := c.RestoreSessions.RestoreSessions(bc.Namespace).List(labels.Everything())
	for _, rs := range rss {
		if rs.Status.Phase.IsFinal() || rs.DeletionTimestamp != nil {
			continue
		}
		for _, b := range rs.Status.PausedBackups {
			if b == bc.Name {
				return rs.Name
			}
		}
	}
	return ""
}

func targetRef(bc *v1beta1.BackupConfiguration) v1beta1.TargetRef {
	ref := bc.Spec.Target.Ref
	if ref.Namespace == "" {
		ref.Namespace = bc.Namespace
	}
	return ref
}

// initiate creates the backup Job when the target and the Repository are
// free, and records the target as started. A missing Task, Function or
// Repository fails the target (never a hang).
func (c *Controller) initiate(ctx context.Context, s *v1beta1.BackupSession, bc *v1beta1.BackupConfiguration, repo *v1beta1.Repository, now time.Time) (requeueAfter time.Duration, err error) {
	st := &s.Status
	if bc.Spec.Target == nil {
		c.setCond(s, v1beta1.BackupSkipped, v1beta1.ConditionTrue, v1beta1.SkippedTakingNewBackup,
			fmt.Sprintf("Skipped taking backup. Reason: BackupConfiguration %s/%s has no target.", bc.Namespace, bc.Name), now)
		return 0, nil
	}
	if len(st.Targets) == 0 {
		st.Targets = []v1beta1.BackupTargetStatus{{Ref: targetRef(bc)}}
	}
	if why := repositoryProblem(bc, repo); why != "" {
		c.failExecutor(s, why, now)
		return 0, nil
	}
	if holder := c.targetHolder(s, bc); holder != "" {
		c.setCond(s, v1beta1.ExecutorWaiting, v1beta1.ConditionTrue, v1beta1.TargetInUse, holder, now)
		return c.cfg.WaitRequeue, nil
	}
	task, fns, why := c.taskProblem(ctx, s, bc, repo)
	if why != "" {
		c.failExecutor(s, why, now)
		return 0, nil
	}
	if msg, err := claim.CreateInterim(ctx, c.Kube, s, v1beta1.KindBackupSession, bc.Spec.InterimVolumeTemplate, v1beta1.KindBackupConfiguration, bc.Name); err != nil || msg != "" {
		if msg != "" {
			c.failExecutor(s, msg, now)
		}
		return 0, err
	}
	if ready, wait, err := c.preHook(ctx, s, bc, now); err != nil || !ready {
		return wait, err
	}
	return c.startJob(ctx, s, bc, repo, task, fns, now)
}

// failExecutor records that the backup's Job cannot be started: the target
// fails with msg rather than waiting for a cause no retry removes.
func (c *Controller) failExecutor(s *v1beta1.BackupSession, msg string, now time.Time) {
	setTargetCond(&s.Status.Targets[0], v1beta1.BackupExecutorEnsured, v1beta1.ConditionFalse, v1beta1.FailedToEnsureBackupExecutor, msg, now)
	v1beta1.RemoveCondition(&s.Status.Conditions, v1beta1.ExecutorWaiting)
	c.Recorder.Event(s, corev1.EventTypeWarning, EventExecutorFailed, msg)
}

// repositoryProblem says why repo cannot take a backup ("" if it can). It is
// checked before waiting for the target: waiting would not fix it.
func repositoryProblem(bc *v1beta1.BackupConfiguration, repo *v1beta1.Repository) string {
	if repo == nil {
		return fmt.Sprintf("Repository %s/%s not found", bc.Spec.Repository.Namespace, bc.Spec.Repository.Name)
	}
	if msg := v1beta1.DecodeError(repo); msg != "" {
		return fmt.Sprintf("Repository %s/%s is invalid: %s", repo.Namespace, repo.Name, msg)
	}
	return ""
}

// taskProblem reads the backup's Task and Functions and says why the
// namespace or the pod policies do not allow them ("" if they do), so a
// forbidden backup fails before it makes anything.
func (c *Controller) taskProblem(ctx context.Context, s *v1beta1.BackupSession, bc *v1beta1.BackupConfiguration, repo *v1beta1.Repository) (*v1beta1.Task, map[string]*v1beta1.Function, string) {
	task, fns, err := executor.TaskAndFunctions(c.Tasks, c.Functions, bc.Spec.Task.Name)
	if err != nil {
		return nil, nil, err.Error()
	}
	nsLabels := func() map[string]string {
		if n, err := c.Kube.CoreV1().Namespaces().Get(ctx, s.Namespace, metav1.GetOptions{}); err == nil {
			return n.Labels
		}
		return nil
	}
	if why := executor.TaskUse(s.Namespace, nsLabels, task, fns); why != "" {
		return nil, nil, why
	}
	if why := c.cfg.Guard.Check(ctx, podguard.Session(podpolicy.BackupConfigurations, bc, repo, task, fns)...); why != "" {
		return nil, nil, why
	}
	return task, fns, ""
}

// startJob starts (or adopts) the backup Job through the shared runner and
// records the outcome on the target; a Job the repository cannot take yet
// leaves the session waiting.
func (c *Controller) startJob(ctx context.Context, s *v1beta1.BackupSession, bc *v1beta1.BackupConfiguration, repo *v1beta1.Repository, task *v1beta1.Task, fns map[string]*v1beta1.Function, now time.Time) (time.Duration, error) {
	jobName := names.BackupJob(s.Name)
	// Backups share a repository once it exists. Until a backup through
	// this Repository succeeded, the backup may have to create it, and two
	// concurrent `restic init` of one location leave a key that does not
	// open the config the other wrote: the first backup runs alone.
	mode := executor.Shared
	if repo.Status.FirstBackupTime == nil {
		mode = executor.Exclusive
	}
	started, err := c.Jobs.Start(ctx, jobrun.Start{Owner: s, Name: jobName, Repository: repo, Mode: mode,
		Build: func() (*batchv1.Job, error) {
			job, err := c.cfg.BuildJob(bc, s, repo, task, fns)
			if err != nil {
				return nil, fmt.Errorf("cannot build the backup Job: %v", err)
			}
			return job, nil
		}})
	if err != nil {
		return 0, err
	}
	switch started.Outcome {
	case jobrun.Waiting:
		c.setCond(s, v1beta1.ExecutorWaiting, v1beta1.ConditionTrue, started.Refusal.Reason, started.Refusal.Message, now)
		return started.Requeue, nil
	case jobrun.BuildFailed, jobrun.CreateFailed:
		c.failExecutor(s, started.Err.Error(), now)
		return 0, nil
	case jobrun.PlaceFailed:
		c.failExecutor(s, fmt.Sprintf("cannot place the backup Job: %v", started.Err), now)
		return 0, nil
	}
	st := &s.Status
	t := &st.Targets[0]
	v1beta1.RemoveCondition(&st.Conditions, v1beta1.ExecutorWaiting)
	one := int32(1)
	t.TotalHosts = &one
	t.PreBackupActions = []string{v1beta1.InitializeBackendRepository}
	// Check, prune and the size refresh run on the Repository's maintenance schedule.
	t.PostBackupActions = []string{v1beta1.ApplyRetentionPolicy, v1beta1.SendRepositoryMetrics}
	setTargetCond(t, v1beta1.BackupExecutorEnsured, v1beta1.ConditionTrue, v1beta1.SuccessfullyEnsuredBackupExecutor,
		fmt.Sprintf("Job %s created%s", jobName, started.Pin.Suffix()), now)
	if started.Outcome == jobrun.Created { // a sync on a stale cache finds the Job it made before: no second event
		c.Recorder.Eventf(s, corev1.EventTypeNormal, EventJobCreated, "Created backup Job %s%s", jobName, started.Pin.Suffix())
	}
	return started.Requeue, nil
}

// targetHolder serializes sessions of different BackupConfigurations that
// back up the same PVC: the running one, or else the oldest, goes first.
func (c *Controller) targetHolder(s *v1beta1.BackupSession, bc *v1beta1.BackupConfiguration) string {
	mine := targetRef(bc)
	others, _ := c.BackupSessions.BackupSessions(s.Namespace).List(labels.Everything())
	for _, o := range others {
		if o.Name == s.Name || o.Spec.Invoker.Name == bc.Name || o.Status.Phase.IsFinal() {
			continue
		}
		obc, err := c.BackupConfigurations.BackupConfigurations(o.Namespace).Get(o.Spec.Invoker.Name)
		if err != nil || obc.Spec.Target == nil {
			continue
		}
		if theirs := targetRef(obc); theirs.Name != mine.Name || theirs.Namespace != mine.Namespace {
			continue
		}
		running := len(o.Status.Targets) > 0 && v1beta1.IsConditionTrue(o.Status.Targets[0].Conditions, v1beta1.BackupExecutorEnsured)
		if running || older(o, s) {
			return fmt.Sprintf("waiting: PVC %s/%s is being backed up by BackupSession %s of BackupConfiguration %s",
				mine.Namespace, mine.Name, o.Name, obc.Name)
		}
	}
	return ""
}

func older(a, b *v1beta1.BackupSession) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

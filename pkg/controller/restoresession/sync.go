package restoresession

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/claim"
	"github.com/stowhq/stow/pkg/controller/executor"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/controller/jobrun"
	"github.com/stowhq/stow/pkg/controller/placement"
	"github.com/stowhq/stow/pkg/controller/podguard"
	"github.com/stowhq/stow/pkg/jobenv"
	"github.com/stowhq/stow/pkg/names"
	"github.com/stowhq/stow/pkg/podpolicy"
	"github.com/stowhq/stow/pkg/resolve"
	"github.com/stowhq/stow/pkg/restic"
)

// Event reasons.
const (
	EventHostRestoreSucceeded = "Host Restore Succeeded"
	EventHostRestoreFailed    = "Host Restore Failed"
	EventInvalid              = "InvalidRestoreSession"
	EventJobCreated           = "RestoreJobCreated"
	EventExecutorFailed       = "RestoreExecutorFailed"
	EventDisrupted            = "RestoreDisrupted"
	EventSucceeded            = "RestoreSessionSucceeded"
	EventFailed               = "RestoreSessionFailed"
)

// sync reconciles one RestoreSession from observed state; it is idempotent.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	cur, found, err := internal.Lookup(key, func(ns, name string) (*v1beta1.RestoreSession, error) {
		return c.RestoreSessions.RestoreSessions(ns).Get(name)
	})
	if !found {
		c.Writes.Forget(key)
		return 0, err
	}
	if c.Writes.Stale(key, cur.ResourceVersion) {
		return internal.StaleRequeue, nil
	}
	if cur.DeletionTimestamp != nil {
		return 0, c.cleanup(ctx, cur)
	}
	if !slices.Contains(cur.Finalizers, v1beta1.Finalizer) && specValid(cur) {
		if cur, err = c.ensureFinalizer(ctx, key, cur); cur == nil || err != nil {
			return 0, err
		}
	}
	rs := cur.DeepCopy()
	st := &rs.Status
	if st.Phase.IsFinal() {
		return 0, c.afterEnd(ctx, cur, rs)
	}
	now := c.Clock.Now()
	work := rs.DeepCopy()
	v1beta1.DefaultRestoreSession(work)

	repo, _ := c.Repositories.Repositories(work.Spec.Repository.Namespace).Get(work.Spec.Repository.Name)
	nsLabels := c.namespaceLabels(ctx, work.Namespace)
	// One the namespace may not use is reported as missing (inputsExist).
	repo = internal.UsableRepository(repo, work.Namespace, nsLabels)
	if msg := c.validate(ctx, work, repo, nsLabels); msg != "" {
		c.invalid(cur, rs, msg, now)
		return 0, c.updateStatus(ctx, cur, rs)
	}
	c.setCond(rs, v1beta1.ValidationPassed, v1beta1.ConditionTrue, v1beta1.ResourceValidationPassed, "the RestoreSession is valid", now)
	internal.SetSessionDeadline(&st.SessionDeadline, rs.CreationTimestamp, work.Spec.TimeOut)

	initiated, completed, after, err := c.progress(ctx, rs, work, repo, now)
	if err != nil {
		return 0, err
	}
	if !completed && st.SessionDeadline != nil && !now.Before(st.SessionDeadline.Time) {
		if err := c.expire(ctx, rs, work, initiated, now); err != nil {
			return 0, err
		}
		completed = true
	}
	if !completed && !initiated && !v1beta1.IsConditionFalse(st.Conditions, v1beta1.RestoreExecutorEnsured) {
		if after, err = c.initiate(ctx, rs, work, repo, now); err != nil {
			return 0, err
		}
	}
	completed = completed || targetDone(st)
	if completed {
		done, wait, err := c.postHook(ctx, rs, work, now)
		if err != nil {
			return 0, err
		}
		if !done {
			// The post hook runs: the restore finalizes once it has an outcome.
			st.Phase = v1beta1.ComputeRestoreSessionPhase(*st)
			return wait, c.updateStatus(ctx, cur, rs)
		}
		c.finalize(ctx, rs, repo, now)
	} else if st.SessionDeadline != nil {
		after = internal.Sooner(after, st.SessionDeadline.Sub(now))
	}
	st.Phase = v1beta1.ComputeRestoreSessionPhase(*st)
	if err := c.updateStatus(ctx, cur, rs); err != nil {
		return 0, err
	}
	return after, nil
}

// progress watches the Jobs of a started restore and reports whether the
// restore has started and whether it is complete (done or out of time);
// after is when the Job watch wants to look again.
func (c *Controller) progress(ctx context.Context, rs, work *v1beta1.RestoreSession, repo *v1beta1.Repository, now time.Time) (initiated, completed bool, after time.Duration, err error) {
	st := &rs.Status
	initiated = v1beta1.IsConditionTrue(st.Conditions, v1beta1.RestoreExecutorEnsured)
	if initiated && !targetDone(st) {
		if after, err = c.watch(ctx, rs, work, repo, now); err != nil {
			return false, false, 0, err
		}
	}
	completed = targetDone(st) || v1beta1.IsConditionTrue(st.Conditions, v1beta1.DeadlineExceeded)
	return initiated, completed, after, nil
}

// afterEnd tidies up after a final session: it first completes a final
// status write that failed half-way (backups still listed as paused), then
// releases the Jobs and deletes the interim volume.
func (c *Controller) afterEnd(ctx context.Context, cur, rs *v1beta1.RestoreSession) error {
	if len(rs.Status.PausedBackups) > 0 {
		rs.Status.PausedBackups = nil
		return c.updateStatus(ctx, cur, rs)
	}
	c.releaseJobs(ctx, rs)
	return c.deleteInterim(ctx, rs)
}

// invalid ends rs Invalid with msg. The Event is sent only when the session
// turns invalid, not on every sync that finds it still so.
func (c *Controller) invalid(cur, rs *v1beta1.RestoreSession, msg string, now time.Time) {
	c.setCond(rs, v1beta1.ValidationPassed, v1beta1.ConditionFalse, v1beta1.ResourceValidationFailed, msg, now)
	rs.Status.Phase = v1beta1.ComputeRestoreSessionPhase(rs.Status)
	rs.Status.Reason = msg
	if !v1beta1.IsConditionFalse(cur.Status.Conditions, v1beta1.ValidationPassed) {
		c.Recorder.Event(rs, corev1.EventTypeWarning, EventInvalid, msg)
	}
}

// specValid tells whether rs's spec passes validation. A session that does
// not never runs, so it has no metrics to clean up and gets no finalizer:
// one stored under a looser schema (as an older Stow had) is refused on
// every write by today's, and with its immutable spec even the invalid
// field could not go with the finalizer (internal.PatchFinalizers), so a
// finalizer would keep it, and its namespace, from ever being deleted.
func specValid(rs *v1beta1.RestoreSession) bool {
	work := rs.DeepCopy()
	v1beta1.DefaultRestoreSession(work)
	return len(v1beta1.ValidateRestoreSession(work)) == 0
}

// ensureFinalizer adds the finalizer cleanup needs (it drops the session's
// Pushgateway group before the session goes). It returns the updated
// session, or nil when the sync ends here: a session whose stored spec the
// schema rejects cannot take a finalizer, so it is ended Invalid instead.
func (c *Controller) ensureFinalizer(ctx context.Context, key string, cur *v1beta1.RestoreSession) (*v1beta1.RestoreSession, error) {
	updated, err := c.addFinalizer(ctx, cur)
	switch {
	case apierrors.IsInvalid(err) && !cur.Status.Phase.IsFinal():
		// The stored spec no longer passes the schema (written under a
		// looser CRD), so no write of the object itself succeeds: the
		// session ends Invalid with the API server's words, and being
		// final it needs no finalizer.
		rs := cur.DeepCopy()
		msg := "the stored RestoreSession does not pass the current schema: " + err.Error()
		c.setCond(rs, v1beta1.ValidationPassed, v1beta1.ConditionFalse, v1beta1.ResourceValidationFailed, msg, c.Clock.Now())
		rs.Status.Phase = v1beta1.ComputeRestoreSessionPhase(rs.Status)
		rs.Status.Reason = msg
		c.Recorder.Event(rs, corev1.EventTypeWarning, EventInvalid, msg)
		if err := c.updateStatus(ctx, cur, rs); apierrors.IsInvalid(err) {
			// Not even its status can be written (the schema's CEL
			// rules are checked on status writes too): the Event and
			// this log line are all that can name it; retrying would
			// only spin.
			klog.FromContext(ctx).Info("RestoreSession cannot be written under the current schema; fix or delete it", "restoresession", key, "err", err)
			return nil, nil
		} else if err != nil {
			return nil, err
		}
		return nil, nil
	case apierrors.IsInvalid(err):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return updated, nil
}

// expire ends a restore past its timeOut: the pre hook is aborted and the
// Jobs of every host stopped, so nothing of it keeps running after its
// deadline.
func (c *Controller) expire(ctx context.Context, rs, work *v1beta1.RestoreSession, initiated bool, now time.Time) error {
	msg := fmt.Sprintf("the restore did not complete within timeOut %s", internal.TimeOutOf(rs.CreationTimestamp, rs.Status.SessionDeadline))
	if err := c.abortPreHook(ctx, rs, work, now); err != nil {
		return err
	}
	if initiated {
		for i := 0; i < int(ptrOr(rs.Status.TotalHosts, 1)); i++ {
			if err := executor.StopJob(ctx, c.Kube, rs.Namespace, names.RestoreJob(rs.Name, i)); err != nil {
				return err
			}
		}
		msg += "; its Jobs were stopped"
	}
	c.setCond(rs, v1beta1.DeadlineExceeded, v1beta1.ConditionTrue, v1beta1.FailedToCompleteWithinDeadline, msg, now)
	c.Recorder.Event(rs, corev1.EventTypeWarning, internal.ReasonDeadlineExceeded, msg)
	return nil
}

func ptrOr(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

// targetDone: every host reported, or the executor failed or was disrupted.
func targetDone(st *v1beta1.RestoreSessionStatus) bool {
	switch v1beta1.ComputeRestoreTargetPhase(*st) {
	case v1beta1.TargetSucceeded, v1beta1.TargetFailed, v1beta1.TargetUnknown:
		return true
	}
	return false
}

func (c *Controller) setCond(rs *v1beta1.RestoreSession, typ string, status v1beta1.ConditionStatus, reason, msg string, now time.Time) {
	v1beta1.SetCondition(&rs.Status.Conditions, v1beta1.Condition{Type: typ, Status: status, Reason: reason, Message: msg}, metav1.NewTime(now))
}

// validate returns the one-line cause that makes rs Invalid, or "".
func (c *Controller) validate(ctx context.Context, work *v1beta1.RestoreSession, repo *v1beta1.Repository, labelsOf func() map[string]string) string {
	if errs := v1beta1.ValidateRestoreSession(work); len(errs) > 0 {
		return errs.ToAggregate().Error()
	}
	if errs := resolve.ValidateInvoker(work.Spec.Task, work.Spec.RuntimeSettings); len(errs) > 0 {
		return errs.ToAggregate().Error()
	}
	if repo != nil && v1beta1.DecodeError(repo) != "" {
		return fmt.Sprintf("Repository %s/%s is invalid: %s", repo.Namespace, repo.Name, v1beta1.DecodeError(repo))
	}
	if work.Spec.Target != nil && len(work.Spec.Target.Args) > 0 {
		// As the restore Job's runner would refuse them, when it runs.
		if err := restic.CheckRestoreArgs(strings.Fields(strings.Join(work.Spec.Target.Args, " "))); err != nil {
			return "spec.target.args: " + err.Error()
		}
	}
	if work.Spec.Target != nil {
		if errs := v1beta1.ValidateMountsApart(v1beta1.TargetMountPath(work.Spec.Target.VolumeMounts), repo,
			field.NewPath("spec", "target", "volumeMounts").Index(0).Child("mountPath")); len(errs) > 0 {
			return errs.ToAggregate().Error()
		}
	}
	// A missing Task or Function fails the session when it starts.
	if task, fns, err := executor.TaskAndFunctions(c.Tasks, c.Functions, work.Spec.Task.Name); err == nil {
		if why := executor.TaskUse(work.Namespace, labelsOf, task, fns); why != "" {
			return why
		}
		if why := c.cfg.Guard.Check(ctx, podguard.Session(podpolicy.RestoreSessions, work, repo, task, fns)...); why != "" {
			return why
		}
	} else if why := c.cfg.Guard.Check(ctx, podguard.Object{Resource: podpolicy.RestoreSessions, Obj: work}, podguard.Object{Resource: podpolicy.Repositories, Obj: repo}); why != "" {
		return why
	}
	return ""
}

// namespaceLabels reads the labels of namespace ns once, when first asked
// (usagePolicy selectors and Task usage match them); nil when unreadable.
func (c *Controller) namespaceLabels(ctx context.Context, ns string) func() map[string]string {
	var labels map[string]string
	read := false
	return func() map[string]string {
		if !read {
			if nsObj, err := c.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err == nil {
				labels = nsObj.Labels
			}
			read = true
		}
		return labels
	}
}

// updateStatus writes rs.Status when it differs from orig; the operator is
// the only writer of RestoreSession status.
func (c *Controller) updateStatus(ctx context.Context, orig, rs *v1beta1.RestoreSession) error {
	if equality.Semantic.DeepEqual(orig.Status, rs.Status) {
		return nil
	}
	client := c.Stow.StowV1beta1().RestoreSessions(rs.Namespace)
	return internal.UpdateSessionStatus(c.Writes, rs, orig.Status.Phase.IsFinal(),
		func(obj *v1beta1.RestoreSession) bool { return obj.Status.Phase.IsFinal() },
		func(obj *v1beta1.RestoreSession) { obj.Status = rs.Status },
		func() (*v1beta1.RestoreSession, error) { return client.Get(ctx, rs.Name, metav1.GetOptions{}) },
		func(obj *v1beta1.RestoreSession) error {
			_, err := client.UpdateStatus(ctx, obj, metav1.UpdateOptions{})
			return err
		})
}

func (c *Controller) addFinalizer(ctx context.Context, rs *v1beta1.RestoreSession) (*v1beta1.RestoreSession, error) {
	var out *v1beta1.RestoreSession
	client := c.Stow.StowV1beta1().RestoreSessions(rs.Namespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		latest, err := client.Get(ctx, rs.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if slices.Contains(latest.Finalizers, v1beta1.Finalizer) {
			out = latest
			return nil
		}
		latest.Finalizers = append(latest.Finalizers, v1beta1.Finalizer)
		out, err = client.Patch(ctx, latest.Name, types.MergePatchType, internal.FinalizerPatch(latest), metav1.PatchOptions{})
		if err == nil {
			c.Writes.Replaced(rs.Namespace+"/"+rs.Name, rs.ResourceVersion, latest.ResourceVersion)
		}
		return err
	})
	return out, err
}

// cleanup runs when the RestoreSession is deleted: its Pushgateway group is
// dropped, then the finalizer removed. Jobs go with it (owner reference);
// restored PVCs stay, they hold the user's data.
func (c *Controller) cleanup(ctx context.Context, rs *v1beta1.RestoreSession) error {
	if !slices.Contains(rs.Finalizers, v1beta1.Finalizer) {
		return nil
	}
	if err := c.Pusher.DeleteInvokerGroup(ctx, v1beta1.KindRestoreSession, rs.Namespace, rs.Name); err != nil {
		return fmt.Errorf("delete metrics group of RestoreSession %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	client := c.Stow.StowV1beta1().RestoreSessions(rs.Namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		latest, err := client.Get(ctx, rs.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		i := slices.Index(latest.Finalizers, v1beta1.Finalizer)
		if i < 0 {
			return nil
		}
		latest.Finalizers = slices.Delete(latest.Finalizers, i, i+1)
		return internal.PatchFinalizers(latest, func(pt types.PatchType, data []byte) error {
			_, err := client.Patch(ctx, latest.Name, pt, data, metav1.PatchOptions{})
			return err
		})
	})
}

// initiate checks the Repository, its Secret and the target, pauses the
// target's backups, and creates the PVCs and the first restore Job once the
// Repository and the target are free.
func (c *Controller) initiate(ctx context.Context, rs, work *v1beta1.RestoreSession, repo *v1beta1.Repository, now time.Time) (requeueAfter time.Duration, err error) {
	if ready, wait, err := c.inputsExist(ctx, rs, work, repo, now); err != nil || !ready {
		return wait, err
	}
	jobs, pvcs, resolved, err := c.build(ctx, work, repo)
	var pe *resolve.TaskParamError
	switch {
	case errors.As(err, &pe):
		// Shows only once the Task is resolved; a spec that no retry fixes.
		c.invalid(rs, rs, pe.Error(), now)
		return 0, nil
	case err != nil:
		c.failExecutor(rs, err.Error(), now)
		return 0, nil
	}
	if free, wait := c.pauseBackups(rs, work, pvcs, now); !free {
		return wait, nil
	}
	if msg, err := c.createClaims(ctx, rs, work, pvcs); err != nil || msg != "" {
		if msg != "" {
			c.failExecutor(rs, msg, now)
		}
		return 0, err
	}
	if ready, wait, err := c.preHook(ctx, rs, work, now); err != nil || !ready {
		return wait, err
	}
	return c.startJobs(ctx, rs, repo, jobs, resolved, now)
}

// inputsExist checks that the Repository, its storage Secret and the target
// PVC exist, recording each on its own condition. A restore may be created
// before what it restores from or into: it waits for them rather than fail.
func (c *Controller) inputsExist(ctx context.Context, rs, work *v1beta1.RestoreSession, repo *v1beta1.Repository, now time.Time) (ready bool, wait time.Duration, err error) {
	ns := rs.Namespace
	if repo == nil {
		msg := fmt.Sprintf("Repository %s/%s not found; the restore waits for it", work.Spec.Repository.Namespace, work.Spec.Repository.Name)
		if work.Spec.Repository.Namespace != ns {
			msg = fmt.Sprintf("Repository %s/%s not found, or its usagePolicy does not allow namespace %q; the restore waits for it", work.Spec.Repository.Namespace, work.Spec.Repository.Name, ns)
		}
		c.setCond(rs, v1beta1.RepositoryFound, v1beta1.ConditionFalse, v1beta1.RepositoryNotAvailable, msg, now)
		return false, c.cfg.WaitRequeue, nil
	}
	c.setCond(rs, v1beta1.RepositoryFound, v1beta1.ConditionTrue, v1beta1.RepositoryAvailable, "the Repository exists", now)
	secret := repo.Spec.Backend.StorageSecretName
	if _, err := c.Kube.CoreV1().Secrets(repo.Namespace).Get(ctx, secret, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		c.setCond(rs, v1beta1.BackendSecretFound, v1beta1.ConditionFalse, v1beta1.BackendSecretNotAvailable,
			fmt.Sprintf("Secret %s/%s not found; the restore waits for it", repo.Namespace, secret), now)
		return false, c.cfg.WaitRequeue, nil
	} else if err != nil {
		return false, 0, fmt.Errorf("read Secret %s/%s: %w", repo.Namespace, secret, err)
	}
	c.setCond(rs, v1beta1.BackendSecretFound, v1beta1.ConditionTrue, v1beta1.BackendSecretAvailable, "the storage Secret exists", now)
	t := work.Spec.Target
	if len(t.VolumeClaimTemplates) > 0 {
		c.setCond(rs, v1beta1.RestoreTargetFound, v1beta1.ConditionTrue, v1beta1.TargetAvailable, "new PVCs are created from volumeClaimTemplates", now)
		return true, 0, nil
	}
	if _, err := c.Kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, t.Ref.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		c.setCond(rs, v1beta1.RestoreTargetFound, v1beta1.ConditionFalse, v1beta1.TargetNotAvailable,
			fmt.Sprintf("PVC %s/%s not found; the restore waits until it exists", ns, t.Ref.Name), now)
		return false, c.cfg.WaitRequeue, nil
	} else if err != nil {
		return false, 0, fmt.Errorf("read PVC %s/%s: %w", ns, t.Ref.Name, err)
	}
	c.setCond(rs, v1beta1.RestoreTargetFound, v1beta1.ConditionTrue, v1beta1.TargetAvailable, "the target PVC exists", now)
	return true, 0, nil
}

// failExecutor records that the restore's Jobs cannot be started: the
// restore fails with msg rather than waiting for a cause no retry removes.
func (c *Controller) failExecutor(rs *v1beta1.RestoreSession, msg string, now time.Time) {
	c.setCond(rs, v1beta1.RestoreExecutorEnsured, v1beta1.ConditionFalse, v1beta1.FailedToEnsureRestoreExecutor, msg, now)
	v1beta1.RemoveCondition(&rs.Status.Conditions, v1beta1.ExecutorWaiting)
	c.Recorder.Event(rs, corev1.EventTypeWarning, EventExecutorFailed, msg)
}

// pauseBackups pauses the backups of every PVC this restore writes, before
// anything is written to it, and reports the target free once no backup
// runs there; otherwise it returns when to look again.
func (c *Controller) pauseBackups(rs, work *v1beta1.RestoreSession, pvcs []*corev1.PersistentVolumeClaim, now time.Time) (free bool, wait time.Duration) {
	st := &rs.Status
	targets := map[string]bool{}
	if t := work.Spec.Target; t.Ref.Name != "" {
		targets[t.Ref.Name] = true
	}
	for _, p := range pvcs {
		targets[p.Name] = true
	}
	paused := c.backupsOf(rs.Namespace, targets, st.PausedBackups)
	if !slices.Equal(paused, st.PausedBackups) {
		// Publish the pause first, so no backup of the target starts
		// between this check and the restore Job.
		st.PausedBackups = paused
		return false, time.Millisecond
	}
	if running := c.runningBackup(rs.Namespace, st.PausedBackups); running != "" {
		c.setCond(rs, v1beta1.ExecutorWaiting, v1beta1.ConditionTrue, v1beta1.WaitingForBackup,
			fmt.Sprintf("waiting: BackupSession %s is backing up the target; the restore starts when it ends", running), now)
		return false, c.cfg.WaitRequeue
	}
	return true, 0
}

// createClaims creates the PVCs the restore writes into and its interim
// volume before any Job needs them. It returns why the restore fails when
// a claim can never be made, and an error for causes a retry may remove.
func (c *Controller) createClaims(ctx context.Context, rs, work *v1beta1.RestoreSession, pvcs []*corev1.PersistentVolumeClaim) (string, error) {
	ns := rs.Namespace
	for _, p := range pvcs {
		err := claim.Create(ctx, c.Kube, p, func(existing *corev1.PersistentVolumeClaim) bool {
			return existing.Annotations[v1beta1.AnnotationRestoredBy] == string(rs.UID)
		})
		if err != nil {
			if msg, ok := permanentClaimError(p.Name, err); ok {
				return msg, nil
			}
			return "", fmt.Errorf("create PVC %s/%s: %w", ns, p.Name, err)
		}
	}
	return claim.CreateInterim(ctx, c.Kube, rs, v1beta1.KindRestoreSession, work.Spec.InterimVolumeTemplate, v1beta1.KindRestoreSession, rs.Name)
}

// startJobs creates the first of the restore's Jobs (the others follow one
// at a time as each ends, see watch) and records on the session what the
// user should know about them.
func (c *Controller) startJobs(ctx context.Context, rs *v1beta1.RestoreSession, repo *v1beta1.Repository, jobs []*batchv1.Job, resolved []jobenv.ResolvedSnapshot, now time.Time) (time.Duration, error) {
	n := int32(len(jobs))
	created, after, err := c.createJob(ctx, rs, repo, jobs[0], 0, int(n), now)
	if err != nil || !created {
		if err != nil && jobrun.Permanent(err) {
			c.failExecutor(rs, err.Error(), now)
			return 0, nil
		}
		return after, err
	}
	rs.Status.TotalHosts = &n
	msg := fmt.Sprintf("Job %s created", jobs[0].Name)
	if n > 1 {
		msg = fmt.Sprintf("%d Jobs, created one at a time (one restic operation per repository); first: %s", n, jobs[0].Name)
	}
	if !resolve.RestoresOwners(&jobs[0].Spec.Template.Spec) {
		msg += "; it runs as a non-root user, so restored files belong to that user (modes and contents are restored; owners only by a restore that runs as root: runtimeSettings.pod.securityContext.runAsUser 0, see docs/security.md)"
	}
	msg += resolvedNote(resolved)
	c.setCond(rs, v1beta1.RestoreExecutorEnsured, v1beta1.ConditionTrue, v1beta1.SuccessfullyEnsuredRestoreExecutor, msg, now)
	return after, nil
}

// permanentClaimError is the session's failure message for a PVC of
// volumeClaimTemplates that cannot be created or used, if waiting would
// not change it.
func permanentClaimError(name string, err error) (string, bool) {
	switch {
	case errors.Is(err, claim.ErrTaken):
		return fmt.Sprintf("PVC %s already exists and was not created by this RestoreSession: nothing is restored into it (name another PVC in volumeClaimTemplates, or restore into it with target.ref)", name), true
	case claim.Permanent(err):
		return fmt.Sprintf("cannot create PVC %s: %v", name, err), true
	}
	return "", false
}

// build resolves the Task into the restore Jobs and PVCs, and returns the
// snapshots chosen from the Snapshot records (none: the Job lists them).
func (c *Controller) build(ctx context.Context, work *v1beta1.RestoreSession, repo *v1beta1.Repository) ([]*batchv1.Job, []*corev1.PersistentVolumeClaim, []jobenv.ResolvedSnapshot, error) {
	task, fns, err := executor.TaskAndFunctions(c.Tasks, c.Functions, work.Spec.Task.Name)
	if err != nil {
		return nil, nil, nil, err
	}
	resolved, err := c.resolvedSnapshots(ctx, work, repo)
	if err != nil {
		// The runner finds the snapshots itself; only a listing is lost.
		resolved = nil
	}
	jobs, pvcs, err := c.cfg.BuildJobs(work, repo, task, fns, resolved)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cannot build the restore Jobs: %w", err)
	}
	if len(jobs) == 0 {
		return nil, nil, nil, fmt.Errorf("cannot build the restore Jobs: the Task produced none")
	}
	return jobs, pvcs, resolved, nil
}

// resolvedNote tells, in the executor condition that outlives the Job, which
// snapshots the operator chose for the restore.
func resolvedNote(resolved []jobenv.ResolvedSnapshot) string {
	if len(resolved) == 0 {
		return ""
	}
	parts := make([]string, 0, len(resolved))
	for _, r := range resolved {
		parts = append(parts, fmt.Sprintf("%s (taken %s)", r.ID, r.Time.UTC().Format(time.RFC3339)))
	}
	return "; restores snapshot " + strings.Join(parts, ", ") + ", the newest of the target's Snapshot records"
}

// createJob creates the Job of one ordinal when the Repository is free. It
// reports false (and a waiting condition) when it must wait, and a
// permanent error (jobrun.Permanent) when the Job cannot be made; after is
// when to look again.
func (c *Controller) createJob(ctx context.Context, rs *v1beta1.RestoreSession, repo *v1beta1.Repository, job *batchv1.Job, ordinal, n int, now time.Time) (created bool, after time.Duration, err error) {
	jobName := names.RestoreJob(rs.Name, ordinal)
	started, err := c.Jobs.Start(ctx, jobrun.Start{Owner: rs, Name: jobName, Repository: repo, Mode: executor.Shared,
		Build: func() (*batchv1.Job, error) { return job, nil }})
	switch {
	case err != nil:
		return false, 0, err
	case started.Outcome == jobrun.Waiting:
		c.setCond(rs, v1beta1.ExecutorWaiting, v1beta1.ConditionTrue, started.Refusal.Reason, started.Refusal.Message, now)
		return false, started.Requeue, nil
	case started.Outcome == jobrun.PlaceFailed:
		return false, 0, &placement.Refusal{Message: "cannot place the restore Job: " + started.Err.Error()}
	case !started.Running():
		return false, 0, started.Err
	}
	v1beta1.RemoveCondition(&rs.Status.Conditions, v1beta1.ExecutorWaiting)
	rs.Status.SetHostStats(v1beta1.HostRestoreStats{Hostname: hostFor(rs, ordinal, n), Phase: v1beta1.HostRunning})
	c.Recorder.Eventf(rs, corev1.EventTypeNormal, EventJobCreated, "Created restore Job %s%s", jobName, started.Pin.Suffix())
	return true, started.Requeue, nil
}

// backupsOf returns the names of BackupConfigurations in ns whose target is
// one of pvcs, merged with those already paused.
func (c *Controller) backupsOf(ns string, pvcs map[string]bool, already []string) []string {
	set := map[string]bool{}
	for _, b := range already {
		set[b] = true
	}
	bcs, _ := c.BackupConfigurations.BackupConfigurations(ns).List(labels.Everything())
	for _, bc := range bcs {
		t := bc.Spec.Target
		if t == nil || (t.Ref.Namespace != "" && t.Ref.Namespace != ns) {
			continue
		}
		if pvcs[t.Ref.Name] {
			set[bc.Name] = true
		}
	}
	if len(set) == 0 {
		return nil
	}
	out := make([]string, 0, len(set))
	for b := range set {
		out = append(out, b)
	}
	sort.Strings(out)
	return out
}

// runningBackup names an unfinished, started BackupSession of one of bcs.
func (c *Controller) runningBackup(ns string, bcs []string) string {
	if len(bcs) == 0 {
		return ""
	}
	sessions, _ := c.BackupSessions.BackupSessions(ns).List(labels.Everything())
	for _, s := range sessions {
		if s.Status.Phase.IsFinal() || !slices.Contains(bcs, s.Spec.Invoker.Name) {
			continue
		}
		if len(s.Status.Targets) > 0 && v1beta1.IsConditionTrue(s.Status.Targets[0].Conditions, v1beta1.BackupExecutorEnsured) {
			return s.Name
		}
	}
	return ""
}

// Restore Jobs are released once the session's final status holds their
// results: a finished pod still counts as using its PVCs, so a kept restore
// Job would hold a PVC deleted afterwards in Terminating (backup Jobs are
// released when their target is deleted, pkg/controller/backupconfiguration).
// Kubernetes' TTL controller deletes them: a succeeded restore's at once
// (nothing in it the status does not say), a failed one's after
// FailedRestoreJobTTL, so its logs can be read first.
const FailedRestoreJobTTL = time.Hour

// deleteInterim deletes the interim volume of a finished restore, so that
// its storage is not kept (the released Job's pod holds it until the TTL
// controller removed that).
func (c *Controller) deleteInterim(ctx context.Context, rs *v1beta1.RestoreSession) error {
	return claim.DeleteInterim(ctx, c.Kube, c.Recorder, rs, rs.Spec.InterimVolumeTemplate)
}

func (c *Controller) releaseJobs(ctx context.Context, rs *v1beta1.RestoreSession) {
	n, err := c.Jobs.ReleaseFinished(ctx, rs, func(*batchv1.Job) time.Duration {
		if rs.Status.Phase == v1beta1.RestoreSucceeded {
			return 0
		}
		return FailedRestoreJobTTL
	})
	if err != nil {
		c.Recorder.Eventf(rs, corev1.EventTypeWarning, "ReleaseFailed", "Could not release the finished restore Jobs: %v", err)
		return
	}
	if n > 0 {
		c.Recorder.Eventf(rs, corev1.EventTypeNormal, "JobsReleased", "%d finished restore Job(s) handed to the TTL controller (deleted %s), so they hold no PVC",
			n, map[bool]string{true: "now", false: "after " + FailedRestoreJobTTL.String()}[rs.Status.Phase == v1beta1.RestoreSucceeded])
	}
}

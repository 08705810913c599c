package repository

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/executor"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/controller/jobrun"
	"github.com/stowhq/stow/pkg/names"
	"github.com/stowhq/stow/pkg/restic"
)

// Event reasons and WipeOut condition reasons of wipeOut.
const (
	EventWipeOutStarted = "WipeOutStarted"
	EventWipedOut       = "WipedOut"
	EventWipeOutFailed  = "WipeOutFailed"
	EventWipeOutRefused = "WipeOutRefused"
	EventWipeOutSkipped = "WipeOutSkipped"

	ReasonWipeOutRefused = "Refused"
	ReasonWipeOutFailed  = "Failed"
	ReasonWipeOutStopped = "Stopped"
	ReasonWipeOutWaiting = "Waiting"
	ReasonWipeOutRunning = "Running"
)

// WipeJobBuilder builds the Job that deletes a Repository's data; the
// operator wires it to resolve.WipeJob.
type WipeJobBuilder func(repo *v1beta1.Repository, created metav1.Time) (*batchv1.Job, error)

// wipeRecheck is how often a refused wipe looks again (another user of the
// location may be gone by then; the users this controller watches requeue
// it at once).
const wipeRecheck = 30 * time.Second

// wipeRetry is how long after a wipe Job that could not run (stopped) the
// next one starts.
const wipeRetry = 5 * time.Minute

// howToSkip ends the message of every refused or failed wipe.
const howToSkip = "; to delete the Repository without deleting its data, set spec.wipeOut to false"

// wipeOut deletes the data of repo, which is being deleted with wipeOut, in
// a Job of its own. done reports that the finalizer may go: the data is
// deleted, or it cannot be (the namespace is being deleted), said in a
// Warning Event. Otherwise the WipeOut condition says what it waits for.
//
// A refused or failed wipe keeps the finalizer: deleting a Repository
// never silently leaves its data behind, nor deletes data someone else
// uses. The user resolves it or sets spec.wipeOut to false.
func (c *Controller) wipeOut(ctx context.Context, repo *v1beta1.Repository) (done bool, requeue time.Duration, err error) {
	where := restic.LocationKey(repo.Spec.Backend, repo.Namespace, repo.Name)
	ns, err := c.kube.CoreV1().Namespaces().Get(ctx, repo.Namespace, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return false, 0, fmt.Errorf("read namespace %s: %v", repo.Namespace, err)
	}
	if err == nil && ns.DeletionTimestamp != nil {
		// Its storage Secret and Jobs are deleted with it: no Job could
		// reach the backend, and waiting would keep the namespace forever.
		msg := fmt.Sprintf("wipeOut skipped: namespace %s is being deleted (its storage Secret and Jobs go with it), so the repository data at %s was left in place", repo.Namespace, where)
		c.event(repo, corev1.EventTypeWarning, EventWipeOutSkipped, msg)
		klog.InfoS("wipeOut skipped", "repository", repo.Namespace+"/"+repo.Name, "reason", msg)
		return true, 0, nil
	}

	jobName := names.WipeJob(repo.Name)
	if c.run != nil && jobStarted(repo) {
		obs, recheck, err := c.run.Watch(ctx, repo, jobName, c.now())
		if err != nil {
			return false, 0, err
		}
		switch obs.State {
		case executor.Running, executor.Pending:
			return false, max(recheck, obs.RecheckAfter, time.Second), nil
		case executor.Succeeded, executor.Failed:
			for _, r := range obs.Results {
				if r.Step == "wipe" && r.Error == "" && r.Wipe != nil && obs.State == executor.Succeeded {
					msg := fmt.Sprintf("deleted the repository data at %s: %d files, %s", where, r.Wipe.Files, restic.FormatSize(uint64(r.Wipe.Bytes)))
					if r.Wipe.Absent {
						msg = fmt.Sprintf("there was no repository at %s: nothing to delete", where)
					}
					c.event(repo, corev1.EventTypeNormal, EventWipedOut, msg)
					return true, 0, nil
				}
			}
			msg := obs.Message
			for _, r := range obs.Results {
				if r.Step == "wipe" && r.Error != "" {
					msg = r.Error
				}
			}
			if msg == "" {
				msg = "the wipe Job reported no result"
			}
			return false, 0, c.setWipe(ctx, repo, v1beta1.ConditionFalse, ReasonWipeOutFailed,
				fmt.Sprintf("Job %s failed: %s; the data at %s is kept; delete the Job to try again%s", jobName, msg, where, howToSkip))
		case executor.Deleted:
			// Gone: deleted to try again, or stopped by an earlier sync
			// (then not sooner than wipeRetry after that).
			if cd := v1beta1.GetCondition(repo.Status.Conditions, v1beta1.WipeOut); cd != nil && cd.Reason == ReasonWipeOutStopped {
				if wait := wipeRetry - c.now().Sub(cd.LastTransitionTime.Time); wait > 0 {
					return false, wait, nil
				}
			}
		default:
			// Stopped now (its pod pending too long, or unable to start):
			// on record, and tried again after wipeRetry.
			return false, wipeRetry, c.setWipe(ctx, repo, v1beta1.ConditionFalse, ReasonWipeOutStopped,
				fmt.Sprintf("Job %s did not run: %s; the data at %s is kept; trying again in %s%s", jobName, obs.Message, where, wipeRetry, howToSkip))
		}
	}

	if why := c.wipeRefusal(repo); why != "" {
		return false, wipeRecheck, c.setWipe(ctx, repo, v1beta1.ConditionFalse, ReasonWipeOutRefused,
			fmt.Sprintf("the data at %s is not deleted: %s%s", where, why, howToSkip))
	}
	// The Job's deadlines count from its start, not from the deletion (a
	// refused wipe may have waited for days).
	created := metav1.NewTime(c.now())
	started, err := c.run.Start(ctx, jobrun.Start{Owner: repo, Name: jobName, Repository: repo, Mode: executor.Exclusive,
		Since: repo.DeletionTimestamp.Time,
		Build: func() (*batchv1.Job, error) { return c.maint.BuildWipe(repo, created) }})
	if err != nil {
		return false, 0, fmt.Errorf("create wipe Job %s/%s: %w", repo.Namespace, jobName, err)
	}
	switch started.Outcome {
	case jobrun.Waiting:
		return false, started.Requeue, c.setWipe(ctx, repo, v1beta1.ConditionUnknown, ReasonWipeOutWaiting,
			fmt.Sprintf("the data at %s is deleted once the location is free (%s)", where, started.Refusal.Message))
	case jobrun.BuildFailed, jobrun.CreateFailed, jobrun.PlaceFailed:
		return false, wipeRecheck, c.setWipe(ctx, repo, v1beta1.ConditionFalse, ReasonWipeOutFailed,
			fmt.Sprintf("cannot start the wipe Job %s: %v; the data at %s is kept%s", jobName, started.Err, where, howToSkip))
	}
	return false, started.Requeue, c.setWipe(ctx, repo, v1beta1.ConditionUnknown, ReasonWipeOutRunning,
		fmt.Sprintf("Job %s deletes the repository data at %s", jobName, where))
}

// jobStarted: a wipe Job was started (and may have ended).
func jobStarted(repo *v1beta1.Repository) bool {
	cd := v1beta1.GetCondition(repo.Status.Conditions, v1beta1.WipeOut)
	return cd != nil && (cd.Reason == ReasonWipeOutRunning || cd.Reason == ReasonWipeOutFailed || cd.Reason == ReasonWipeOutStopped)
}

// wipeRefusal says why repo's data must not be deleted, or "": a spec that
// is not valid, a location that is not the repository's own part of a
// bucket, or a location someone else still uses: another Repository (in
// any namespace, not being deleted) whose location overlaps it, or a
// BackupConfiguration or unfinished RestoreSession that uses repo.
func (c *Controller) wipeRefusal(repo *v1beta1.Repository) string {
	if c.run == nil || c.maint == nil || c.maint.BuildWipe == nil {
		return "this operator runs no Jobs for Repositories"
	}
	if errs := v1beta1.ValidateRepository(repo); len(errs) > 0 {
		return "the spec is not valid: " + errs.ToAggregate().Error()
	}
	if why := restic.WipeRefusal(repo.Spec.Backend); why != "" {
		return why
	}
	var users []string
	repos, _ := c.repos.List(labels.Everything())
	for _, o := range repos {
		if o.UID == repo.UID || o.DeletionTimestamp != nil {
			continue
		}
		if restic.Overlap(repo.Spec.Backend, repo.Namespace, o.Spec.Backend, o.Namespace) {
			users = append(users, fmt.Sprintf("Repository %s/%s (%s)", o.Namespace, o.Name, restic.LocationKey(o.Spec.Backend, o.Namespace, o.Name)))
		}
	}
	for _, ref := range c.references(repo) {
		if ref.Kind == v1beta1.KindRestoreSession {
			if rs, err := c.restores.RestoreSessions(ref.Namespace).Get(ref.Name); err == nil && rs.Status.Phase.IsFinal() {
				continue // done with the repository
			}
		}
		users = append(users, fmt.Sprintf("%s %s/%s", ref.Kind, ref.Namespace, ref.Name))
	}
	if len(users) == 0 {
		return ""
	}
	sort.Strings(users)
	return "the location is still used by " + strings.Join(users, ", ")
}

// setWipe writes the WipeOut condition and, when it changed, an Event.
func (c *Controller) setWipe(ctx context.Context, repo *v1beta1.Repository, st v1beta1.ConditionStatus, reason, msg string) error {
	if old := v1beta1.GetCondition(repo.Status.Conditions, v1beta1.WipeOut); old == nil || old.Reason != reason || old.Message != msg {
		typ, ev := corev1.EventTypeWarning, EventWipeOutFailed
		switch reason {
		case ReasonWipeOutRefused:
			ev = EventWipeOutRefused
		case ReasonWipeOutWaiting, ReasonWipeOutRunning:
			typ, ev = corev1.EventTypeNormal, EventWipeOutStarted
		}
		if reason != ReasonWipeOutWaiting {
			c.event(repo, typ, ev, msg)
		}
	}
	cd := v1beta1.Condition{Type: v1beta1.WipeOut, Status: st, Reason: reason, Message: msg}
	client := c.stow.StowV1beta1().Repositories(repo.Namespace)
	now := metav1.NewTime(c.now())
	err := internal.UpdateStatus(c.writes, repo.DeepCopy(),
		func() (*v1beta1.Repository, error) { return client.Get(ctx, repo.Name, metav1.GetOptions{}) },
		func(r *v1beta1.Repository) bool { return v1beta1.SetCondition(&r.Status.Conditions, cd, now) },
		func(r *v1beta1.Repository) error {
			_, err := client.UpdateStatus(ctx, r, metav1.UpdateOptions{})
			return err
		})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		v1beta1.SetCondition(&repo.Status.Conditions, cd, now)
	}
	return err
}

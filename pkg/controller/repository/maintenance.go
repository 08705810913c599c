package repository

import (
	"context"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/executor"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/jobresult"
	"github.com/stowhq/stow/pkg/names"
	"github.com/stowhq/stow/pkg/restic"
)

// Event reasons of maintenance.
const (
	EventMaintenanceStarted   = "MaintenanceStarted"
	EventMaintenanceSucceeded = "MaintenanceSucceeded"
	EventMaintenanceFailed    = "MaintenanceFailed"
)

// AnnotationMaintenance is on maintenance Jobs and their pods: the name of
// their Repository, so that their events re-queue it.
const AnnotationMaintenance = "stow.dev/repository-maintenance"

// MaintenanceJobBuilder builds the Job of a maintenance run; the operator
// wires it to resolve.MaintenanceJob.
type MaintenanceJobBuilder func(repo *v1beta1.Repository, tasks []string, runID string, created metav1.Time) (*batchv1.Job, error)

// Maintenance is what the controller needs to run maintenance Jobs. With
// no Maintenance, the controller runs none.
type Maintenance struct {
	Build          MaintenanceJobBuilder
	Gate           *executor.Gate
	PendingTimeout time.Duration
	WaitRequeue    time.Duration
}

// outcome is what a maintenance reconcile wants written and when to look again.
type outcome struct {
	status    *v1beta1.MaintenanceStatus
	conds     []v1beta1.Condition
	removed   []string // condition types to drop
	integrity *bool
	size      string
	snapshots *int64
	requeue   time.Duration
}

// maintain runs, or watches, the maintenance of repo at now.
func (c *Controller) maintain(ctx context.Context, repo *v1beta1.Repository, now time.Time) (outcome, error) {
	st := &v1beta1.MaintenanceStatus{}
	if repo.Status.Maintenance != nil {
		st = repo.Status.Maintenance.DeepCopy()
	}
	out := outcome{status: st}
	if st.Job != "" {
		done, err := c.watchMaintenance(ctx, repo, st, now, &out)
		if err != nil || !done {
			return out, err
		}
	}
	p := due(repo, now)
	if len(p.invalid) > 0 {
		out.conds = append(out.conds, v1beta1.Condition{Type: v1beta1.MaintenanceFailed, Status: v1beta1.ConditionTrue,
			Reason: "InvalidSchedule", Message: strings.Join(p.invalid, "; ")})
	}
	for _, task := range v1beta1.MaintenanceTasks {
		r := st.Run(task)
		at, scheduled := p.next[task]
		if r == nil && !scheduled {
			continue
		}
		if r == nil {
			r = &v1beta1.MaintenanceRun{}
		}
		r = r.DeepCopy()
		r.NextTime = nil
		if scheduled {
			t := metav1.NewTime(at)
			r.NextTime = &t
			out.wake(at.Sub(now))
		}
		setRun(st, task, r)
	}
	if len(p.tasks) == 0 || st.Job != "" {
		out.removed = append(out.removed, v1beta1.MaintenanceWaiting)
		return out, nil
	}
	return out, c.startMaintenance(ctx, repo, st, p, now, &out)
}

func (o *outcome) wake(d time.Duration) {
	if d <= 0 {
		d = time.Second
	}
	if o.requeue == 0 || d < o.requeue {
		o.requeue = d
	}
}

// startMaintenance creates the Job of plan p once the repository's location
// (and a Job slot) is free.
func (c *Controller) startMaintenance(ctx context.Context, repo *v1beta1.Repository, st *v1beta1.MaintenanceStatus, p plan, now time.Time, out *outcome) error {
	m := c.maint
	runID := p.runID()
	jobName := names.MaintenanceJob(repo.Name, runID)
	jobKey := repo.Namespace + "/" + jobName
	mode := executor.Shared
	if p.exclusive() {
		mode = executor.Exclusive
	}
	lock := executor.Request{Location: restic.LocationKey(repo.Spec.Backend, repo.Namespace, repo.Name), Job: jobKey,
		Mode: mode, Since: p.dueAt, Wake: func() { c.queue.Add(repo.Namespace + "/" + repo.Name) }}
	if refusal := m.Gate.Acquire(lock); refusal != nil {
		out.conds = append(out.conds, v1beta1.Condition{Type: v1beta1.MaintenanceWaiting, Status: v1beta1.ConditionTrue,
			Reason: refusal.Reason, Message: fmt.Sprintf("maintenance (%s) %s", strings.Join(p.tasks, ", "), refusal.Message)})
		out.wake(m.WaitRequeue)
		return nil
	}
	job, err := m.Build(repo, p.tasks, runID, metav1.NewTime(p.dueAt))
	if err != nil {
		m.Gate.Release(jobKey)
		c.finishRun(repo, st, p.tasks, p.requests, now, nil, fmt.Sprintf("cannot build the maintenance Job: %v", err), out)
		return nil
	}
	executor.Prepare(job, jobName, repo.Namespace, executor.OwnerRef(v1beta1.KindRepository, repo.Name, repo.UID),
		v1beta1.ComponentMaintenance, AnnotationMaintenance, repo.Name, repo.Namespace+"/"+repo.Name, lock)
	_, err = c.kube.BatchV1().Jobs(repo.Namespace).Create(ctx, job, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		existing, gerr := c.kube.BatchV1().Jobs(repo.Namespace).Get(ctx, jobName, metav1.GetOptions{})
		switch {
		case gerr != nil:
			err = gerr
		case internal.IsControlledBy(existing, repo.UID):
			err = nil // made by a reconcile whose status write was lost
		}
	}
	if err != nil {
		m.Gate.Release(jobKey)
		if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsAlreadyExists(err) {
			c.finishRun(repo, st, p.tasks, p.requests, now, nil, fmt.Sprintf("cannot create the maintenance Job: %v", err), out)
			return nil
		}
		return fmt.Errorf("create maintenance Job %s: %w", jobKey, err)
	}
	st.Job, st.JobTasks, st.JobRequests = jobName, strings.Join(p.tasks, ","), encodeRequests(p.requests)
	out.removed = append(out.removed, v1beta1.MaintenanceWaiting)
	c.event(repo, corev1.EventTypeNormal, EventMaintenanceStarted, fmt.Sprintf("Job %s runs %s", jobName, strings.Join(p.tasks, ", ")))
	out.wake(m.PendingTimeout)
	return nil
}

// watchMaintenance looks at the running maintenance Job; done reports that
// it has ended (and its outcome is recorded in st).
func (c *Controller) watchMaintenance(ctx context.Context, repo *v1beta1.Repository, st *v1beta1.MaintenanceStatus, now time.Time, out *outcome) (done bool, err error) {
	m := c.maint
	jobKey := repo.Namespace + "/" + st.Job
	tasks := strings.Split(st.JobTasks, ",")
	requests := decodeRequests(st.JobRequests)
	job, err := c.jobs.Jobs(repo.Namespace).Get(st.Job)
	if err == nil {
		m.Gate.Observed(jobKey)
	}
	if apierrors.IsNotFound(err) {
		job, err = c.kube.BatchV1().Jobs(repo.Namespace).Get(ctx, st.Job, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) || (err == nil && !internal.IsControlledBy(job, repo.UID)) {
		m.Gate.Release(jobKey)
		c.finishRun(repo, st, tasks, requests, now, nil, fmt.Sprintf("Job %s was deleted before it reported a result", st.Job), out)
		return true, nil
	}
	if err != nil {
		return false, err
	}
	pods, err := c.pods.Pods(repo.Namespace).List(labels.Everything())
	if err != nil {
		return false, err
	}
	obs := executor.Observe(job, pods, now, m.PendingTimeout)
	executor.ExplainNoPod(ctx, c.kube, job, &obs)
	switch obs.State {
	case executor.Running:
		return false, nil
	case executor.Pending:
		out.wake(obs.RecheckAfter)
		return false, nil
	case executor.PendingTooLong, executor.CannotStart, executor.Deleted:
		if err := executor.StopJob(ctx, c.kube, repo.Namespace, st.Job); err != nil {
			return false, err
		}
		m.Gate.Release(jobKey)
		c.finishRun(repo, st, tasks, requests, now, nil, obs.Message, out)
		return true, nil
	}
	m.Gate.Release(jobKey)
	var res *jobresult.Result
	for i := range obs.Results {
		if obs.Results[i].Step == "maintain" {
			res = &obs.Results[i]
		}
	}
	msg := ""
	if res == nil {
		msg = "the maintenance Job reported no result"
		if obs.State == executor.Failed {
			msg = obs.Message
		}
	}
	c.finishRun(repo, st, tasks, requests, now, res, msg, out)
	return true, nil
}

// finishRun records the end of a maintenance run of tasks: res is the
// Job's result (nil when there is none, failure then says why).
func (c *Controller) finishRun(repo *v1beta1.Repository, st *v1beta1.MaintenanceStatus, tasks []string, requests map[string]string, now time.Time, res *jobresult.Result, failure string, out *outcome) {
	t := metav1.NewTime(now)
	var failed, ok []string
	for _, task := range tasks {
		r := &v1beta1.MaintenanceRun{LastTime: &t, Request: requests[task]}
		if prev := st.Run(task); prev != nil {
			r.NextTime = prev.NextTime
			if r.Request == "" {
				r.Request = prev.Request // a scheduled run answers no request
			}
		}
		msg, succeeded := taskOutcome(task, res, failure)
		r.Succeeded, r.Message = &succeeded, msg
		setRun(st, task, r)
		if succeeded {
			ok = append(ok, task+": "+msg)
		} else {
			failed = append(failed, task+": "+msg)
		}
	}
	if res != nil {
		out.integrity = res.Integrity
		out.size = res.TotalSize
		out.snapshots = res.RepositorySnapshots
	}
	st.Job, st.JobTasks, st.JobRequests = "", "", ""
	if len(failed) > 0 {
		out.conds = append(out.conds, v1beta1.Condition{Type: v1beta1.MaintenanceFailed, Status: v1beta1.ConditionTrue,
			Reason: "TaskFailed", Message: strings.Join(failed, "; ")})
		c.event(repo, corev1.EventTypeWarning, EventMaintenanceFailed, strings.Join(failed, "; "))
	} else {
		out.conds = append(out.conds, v1beta1.Condition{Type: v1beta1.MaintenanceFailed, Status: v1beta1.ConditionFalse,
			Reason: "TasksSucceeded", Message: strings.Join(ok, "; ")})
		c.event(repo, corev1.EventTypeNormal, EventMaintenanceSucceeded, strings.Join(ok, "; "))
	}
	if len(ok) > 0 && len(failed) > 0 {
		c.event(repo, corev1.EventTypeNormal, EventMaintenanceSucceeded, strings.Join(ok, "; "))
	}
}

// taskOutcome is the one-line account of one task of a run.
func taskOutcome(task string, res *jobresult.Result, failure string) (string, bool) {
	if res == nil {
		return failure, false
	}
	for _, part := range strings.Split(res.Error, "; ") {
		if msg, ok := strings.CutPrefix(part, task+": "); ok {
			return msg, false
		}
	}
	if res.Error != "" && !strings.Contains(res.Error, ": ") {
		return res.Error, false // the step failed before any task ran
	}
	switch task {
	case v1beta1.MaintenanceUnlock:
		if mr := res.Maintenance; mr != nil {
			msg := fmt.Sprintf("removed %d stale lock(s), kept %d", mr.LocksRemoved, len(mr.LocksKept))
			if len(mr.LocksKept) > 0 {
				msg += ": " + strings.Join(mr.LocksKept, "; ")
			}
			return msg, true
		}
	case v1beta1.MaintenancePrune:
		if res.Pruned != nil && *res.Pruned {
			return "unreferenced data removed", true
		}
	case v1beta1.MaintenanceCheck:
		if res.Integrity != nil && *res.Integrity {
			return "no errors were found", true
		}
	case v1beta1.MaintenanceRefresh:
		if res.RepositorySnapshots != nil {
			return fmt.Sprintf("%d snapshots, %s", *res.RepositorySnapshots, res.TotalSize), true
		}
	}
	return "the maintenance Job did not report this task", false
}

// apply writes the outcome into st; it reports whether anything changed.
func (o outcome) apply(st *v1beta1.RepositoryStatus, now metav1.Time) bool {
	if o.status == nil {
		return false
	}
	before := st.DeepCopy()
	ms := o.status.DeepCopy()
	if equality.Semantic.DeepEqual(ms, &v1beta1.MaintenanceStatus{}) {
		ms = nil
	}
	st.Maintenance = ms
	if o.integrity != nil {
		v := *o.integrity
		st.Integrity = &v
	}
	if o.size != "" {
		st.TotalSize = o.size
	}
	if o.snapshots != nil {
		st.SnapshotCount = *o.snapshots
	}
	for _, cd := range o.conds {
		v1beta1.SetCondition(&st.Conditions, cd, now)
	}
	for _, typ := range o.removed {
		v1beta1.RemoveCondition(&st.Conditions, typ)
	}
	return !equality.Semantic.DeepEqual(before, st)
}

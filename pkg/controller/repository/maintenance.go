package repository

import (
	"context"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/executor"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/controller/jobrun"
	"github.com/stowhq/stow/pkg/jobresult"
	"github.com/stowhq/stow/pkg/names"
)

// Event reasons of maintenance.
const (
	EventMaintenanceStarted   = "MaintenanceStarted"
	EventMaintenanceSucceeded = "MaintenanceSucceeded"
	EventMaintenanceFailed    = "MaintenanceFailed"
)

// MaintenanceJobBuilder builds the Job of a maintenance run; the operator
// wires it to resolve.MaintenanceJob.
type MaintenanceJobBuilder func(repo *v1beta1.Repository, tasks []string, runID string, created metav1.Time) (*batchv1.Job, error)

// Maintenance is what the controller needs to run maintenance Jobs. With
// no Maintenance, the controller runs none.
type Maintenance struct {
	Build MaintenanceJobBuilder
	// BuildWipe builds the Job that deletes a Repository's data (wipeOut).
	BuildWipe      WipeJobBuilder
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

// maintain runs, or watches, the maintenance of repo at now; sessions are
// the BackupSessions through repo (backupSessions).
func (c *Controller) maintain(ctx context.Context, repo *v1beta1.Repository, sessions []*v1beta1.BackupSession, now time.Time) (outcome, error) {
	st := &v1beta1.MaintenanceStatus{}
	if repo.Status.Maintenance != nil {
		st = repo.Status.Maintenance.DeepCopy()
	}
	out := outcome{status: st}
	if st.Job != "" {
		done, err := c.watchMaintenance(ctx, repo, st, sessions, now, &out)
		if err != nil || !done {
			return out, err
		}
	}
	p := due(repo, st, now)
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
	mode := executor.Shared
	if p.exclusive() {
		mode = executor.Exclusive
	}
	started, err := c.run.Start(ctx, jobrun.Start{Owner: repo, Name: jobName, Repository: repo, Mode: mode, Since: p.dueAt,
		Build: func() (*batchv1.Job, error) { return m.Build(repo, p.tasks, runID, metav1.NewTime(p.dueAt)) }})
	if err != nil {
		return fmt.Errorf("create maintenance Job %s/%s: %w", repo.Namespace, jobName, err)
	}
	switch started.Outcome {
	case jobrun.Waiting:
		out.conds = append(out.conds, v1beta1.Condition{Type: v1beta1.MaintenanceWaiting, Status: v1beta1.ConditionTrue,
			Reason: started.Refusal.Reason, Message: fmt.Sprintf("maintenance (%s) %s", strings.Join(p.tasks, ", "), started.Refusal.Message)})
		out.wake(started.Requeue)
		return nil
	case jobrun.BuildFailed:
		c.finishRun(repo, st, p.tasks, p.requests, now, nil, fmt.Sprintf("cannot build the maintenance Job: %v", started.Err), out)
		return nil
	case jobrun.CreateFailed:
		c.finishRun(repo, st, p.tasks, p.requests, now, nil, fmt.Sprintf("cannot create the maintenance Job: %v", started.Err), out)
		return nil
	case jobrun.PlaceFailed:
		c.finishRun(repo, st, p.tasks, p.requests, now, nil, fmt.Sprintf("cannot place the maintenance Job: %v", started.Err), out)
		return nil
	}
	st.Job, st.JobTasks, st.JobRequests = jobName, strings.Join(p.tasks, ","), encodeRequests(p.requests)
	out.removed = append(out.removed, v1beta1.MaintenanceWaiting)
	c.event(repo, corev1.EventTypeNormal, EventMaintenanceStarted, fmt.Sprintf("Job %s runs %s%s", jobName, strings.Join(p.tasks, ", "), started.Pin.Suffix()))
	out.wake(started.Requeue)
	return nil
}

// watchMaintenance looks at the running maintenance Job; done reports that
// it has ended (and its outcome is recorded in st).
func (c *Controller) watchMaintenance(ctx context.Context, repo *v1beta1.Repository, st *v1beta1.MaintenanceStatus, sessions []*v1beta1.BackupSession, now time.Time, out *outcome) (done bool, err error) {
	tasks := strings.Split(st.JobTasks, ",")
	requests := decodeRequests(st.JobRequests)
	obs, recheck, err := c.run.Watch(ctx, repo, st.Job, now)
	if err != nil {
		return false, err
	}
	switch obs.State {
	case executor.Running:
		if recheck > 0 { // the pod's node is read again then
			out.wake(recheck)
		}
		return false, nil
	case executor.Pending:
		out.wake(obs.RecheckAfter)
		return false, nil
	case executor.PendingTooLong, executor.CannotStart, executor.Deleted:
		c.finishRun(repo, st, tasks, requests, now, nil, obs.Message, out)
		return true, nil
	}
	var res *jobresult.Result
	for i := range obs.Results {
		if obs.Results[i].Step == "maintain" {
			res = &obs.Results[i]
		}
	}
	if res != nil && res.RepositorySnapshots != nil {
		if s := c.unrecordedBackup(sessions, now); s != "" {
			// The listing counted the snapshot of a backup whose Job ended
			// before this one started (the location was free) but whose
			// result the operator has not recorded yet: the count would
			// move by it again when it is. Apply the refresh after it.
			out.wake(time.Second)
			return false, nil
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
	if res != nil && (res.Integrity != nil || res.TotalSize != "" || res.RepositorySnapshots != nil) {
		// The operator pushes what the Job measured (a failed check is
		// integrity 0); a failed push is an Event, never a failed run.
		if err := c.pusher.MaintenanceResult(ctx, repo, *res); err != nil {
			c.event(repo, corev1.EventTypeWarning, internal.ReasonMetricsFailed, "Pushing the repository metrics failed: "+err.Error())
		}
	}
	return true, nil
}

// unrecordedWait bounds how long a refresh waits for the result of a
// finished backup: a session that cannot record it for longer has a problem
// of its own (its Events say so), and the refresh is applied regardless.
const unrecordedWait = time.Minute

// unrecordedBackup names one of sessions whose backup Job finished (less
// than unrecordedWait ago) and whose result is not in its status yet, or "".
func (c *Controller) unrecordedBackup(sessions []*v1beta1.BackupSession, now time.Time) string {
	for _, s := range sessions {
		if s.Status.Phase.IsFinal() || s.ResultTime() != nil {
			continue
		}
		if at, ok := c.run.FinishedAt(s.Namespace, names.BackupJob(s.Name)); ok && now.Sub(at) < unrecordedWait {
			return s.Namespace + "/" + s.Name
		}
	}
	return ""
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

// Package jobrun runs the Jobs of one kind of Stow object (a BackupSession,
// a RestoreSession, a Repository's maintenance) from creation to end: it
// asks the repository gate for the Job's backend location, builds, marks and
// creates the Job (or adopts the one an earlier sync created), watches the
// Job and its pod, stops a Job that cannot finish, and releases the location
// once the Job has ended. The gate's rule "once Acquire said yes, create the
// Job or call Release" is kept here and nowhere else.
//
// What the Job means (which conditions, stats and Events its outcome makes)
// stays with the owner's controller.
package jobrun

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/executor"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/controller/placement"
	"github.com/stowhq/stow/pkg/restic"
)

// Kind says whose Jobs a Runner runs.
type Kind struct {
	// Owner is the kind of the owning object (v1beta1.KindBackupSession, ...),
	// the Jobs' controller reference.
	Owner string
	// Component is the Jobs' app.kubernetes.io/component label.
	Component string
	// Annotation names the owner on the Jobs and their pods; the event
	// handlers map a Job or pod back to its owner with it.
	Annotation string
	// Placed: the Jobs mount the user's volumes. A ReadWriteOnce volume in
	// use pins the Job's pod to its user's node, and a lost node ends the
	// Job (pkg/controller/placement).
	Placed bool
	// ReleaseStopped: the owner forgets a Job it stopped (a maintenance run
	// ends with it), so the location is released at once rather than when
	// the Job's pods are gone.
	ReleaseStopped bool
}

// Config holds the times a Runner works with.
type Config struct {
	// PendingTimeout is how long a Job's pod may stay Pending before the
	// Job is stopped (default 5m).
	PendingTimeout time.Duration
	// WaitRequeue is how often an owner waiting at the gate asks again
	// (default 5s).
	WaitRequeue time.Duration
}

// WithDefaults fills the unset times.
func (c Config) WithDefaults() Config {
	if c.PendingTimeout <= 0 {
		c.PendingTimeout = 5 * time.Minute
	}
	if c.WaitRequeue <= 0 {
		c.WaitRequeue = 5 * time.Second
	}
	return c
}

// Runner runs the Jobs of one owner kind. queue receives the owner's
// namespace/name key when the gate may now admit a waiting Job.
type Runner struct {
	kind  Kind
	cfg   Config
	kube  kubernetes.Interface
	gate  *executor.Gate
	jobs  batchlisters.JobLister
	pods  corelisters.PodLister
	queue executor.Requeuer
}

// New returns a Runner. jobs and pods are the listers of Stow's Jobs and
// pods; gate must be the one gate of the process.
func New(kind Kind, cfg Config, kube kubernetes.Interface, gate *executor.Gate, jobs batchlisters.JobLister, pods corelisters.PodLister, queue executor.Requeuer) *Runner {
	return &Runner{kind: kind, cfg: cfg.WithDefaults(), kube: kube, gate: gate, jobs: jobs, pods: pods, queue: queue}
}

// Start asks for one Job.
type Start struct {
	// Owner is the object the Job belongs to; the Job is created in its
	// namespace, with a controller reference to it.
	Owner metav1.Object
	// Name is the Job's name.
	Name string
	// Repository is the restic repository the Job uses: its backend
	// location is what the gate serializes.
	Repository *v1beta1.Repository
	Mode       executor.Mode
	// Since orders waiting owners over the Job limit (oldest first); zero
	// means the owner's creation time.
	Since time.Time
	// Build makes the Job; it runs only once the gate admitted it.
	Build func() (*batchv1.Job, error)
}

// Outcome is what Start did.
type Outcome int

const (
	// Waiting: the gate refused; Refusal says why, ask again after Requeue
	// (or sooner: the queue is told when something is released).
	Waiting Outcome = iota
	// Created: this call created the Job.
	Created
	// Adopted: a Job of this owner and name already existed (a sync whose
	// status write was lost, or one on a stale cache, created it).
	Adopted
	// BuildFailed: Build returned Err; no Job exists.
	BuildFailed
	// PlaceFailed: the Job's pod cannot run where its volumes are (Err is
	// the *placement.Refusal); no Job exists.
	PlaceFailed
	// CreateFailed: the API server refuses the Job for good (Permanent);
	// Err says why.
	CreateFailed
)

// Started is Start's answer.
type Started struct {
	Outcome Outcome
	// Refusal is the gate's reason and message when Waiting.
	Refusal *executor.Refusal
	// Err is the cause of BuildFailed and CreateFailed.
	Err error
	// Pin is where a Placed Job's pod was pinned, if anywhere.
	Pin placement.Pin
	// Requeue is when the owner must be looked at again: WaitRequeue when
	// Waiting, PendingTimeout once the Job exists (the watchdog must look
	// even if no pod ever appears).
	Requeue time.Duration
}

// Running reports whether the Job exists now (Created or Adopted).
func (s Started) Running() bool { return s.Outcome == Created || s.Outcome == Adopted }

// Start creates the Job once the gate admits it. A transient API error is
// returned (the gate is released, the sync is retried); everything else is
// in Started.
func (r *Runner) Start(ctx context.Context, st Start) (Started, error) {
	ns, owner := st.Owner.GetNamespace(), st.Owner.GetName()
	jobKey := ns + "/" + st.Name
	since := st.Since
	if since.IsZero() {
		since = st.Owner.GetCreationTimestamp().Time
	}
	repo := st.Repository
	lock := executor.Request{Location: restic.LocationKey(repo.Spec.Backend, repo.Namespace, repo.Name), Job: jobKey,
		Mode: st.Mode, Since: since, Wake: executor.Wake(r.queue, ns, owner)}
	if refusal := r.gate.Acquire(lock); refusal != nil {
		return Started{Outcome: Waiting, Refusal: refusal, Requeue: r.cfg.WaitRequeue}, nil
	}
	// The gate counts the Job as running from here: every way out that
	// leaves no Job releases it.
	job, err := st.Build()
	if err != nil {
		r.gate.Release(jobKey)
		return Started{Outcome: BuildFailed, Err: err}, nil
	}
	executor.Prepare(job, st.Name, ns, v1beta1.OwnerRef(r.kind.Owner, owner, st.Owner.GetUID()),
		r.kind.Component, r.kind.Annotation, owner, executor.RepositoryKey(repo.Namespace, repo.Name), lock)
	var pin placement.Pin
	if r.kind.Placed {
		if pin, err = placement.Apply(ctx, r.kube, ns, st.Name, &job.Spec.Template); err != nil {
			r.gate.Release(jobKey)
			if placement.IsRefusal(err) {
				return Started{Outcome: PlaceFailed, Err: err}, nil
			}
			return Started{}, err
		}
	}
	created, err := r.create(ctx, job, st.Owner)
	if err != nil {
		r.gate.Release(jobKey)
		if Permanent(err) {
			return Started{Outcome: CreateFailed, Err: err}, nil
		}
		return Started{}, err
	}
	out := Started{Outcome: Adopted, Pin: pin, Requeue: r.cfg.PendingTimeout}
	if created {
		out.Outcome = Created
	}
	return out, nil
}

// Permanent tells whether a Job creation error will not go away by trying
// again: the Job is invalid, forbidden, its name is taken by a Job that is
// not the owner's, or its pod cannot run where its volumes are.
func Permanent(err error) bool {
	return apierrors.IsAlreadyExists(err) || apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || placement.IsRefusal(err)
}

// create creates job; an existing Job controlled by owner counts as
// created, with created false.
func (r *Runner) create(ctx context.Context, job *batchv1.Job, owner metav1.Object) (created bool, err error) {
	_, err = r.kube.BatchV1().Jobs(job.Namespace).Create(ctx, job, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		return err == nil, err
	}
	existing, gerr := r.kube.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
	if gerr != nil {
		return false, gerr
	}
	if internal.IsControlledBy(existing, owner.GetUID()) {
		return false, nil
	}
	return false, apierrors.NewAlreadyExists(batchv1.Resource("jobs"),
		fmt.Sprintf("%s (a Job of that name exists and does not belong to %s %s)", job.Name, r.kind.Owner, owner.GetName()))
}

// Watch is the watchdog of a started Job: it reads the Job of owner named
// name and its pod, and returns what executor.Observe concludes, after
// keeping the gate's books:
//   - a Job the informer shows meets the gate's expectation (Observed);
//   - a Job that is gone, or that is not the owner's, ends as Deleted (with
//     the ExecutorDeleted reason) and is released;
//   - PendingTooLong, CannotStart and Deleted stop the Job, in the
//     foreground: it holds the location until its pods are gone (unless
//     Kind.ReleaseStopped);
//   - Succeeded and Failed release the location, even before the Job
//     controller marks the Job finished: restic no longer runs.
//
// A Placed Job whose pod's node is lost ends as Deleted with the NodeLost
// reason (and is stopped). Pending asks for a look again after the
// observation's RecheckAfter; recheck is when to look again otherwise (a
// node NotReady for less than the grace period; 0: no need).
func (r *Runner) Watch(ctx context.Context, owner metav1.Object, name string, now time.Time) (obs executor.Observation, recheck time.Duration, err error) {
	ns := owner.GetNamespace()
	jobKey := ns + "/" + name
	job, err := r.jobs.Jobs(ns).Get(name)
	if err == nil {
		r.gate.Observed(jobKey)
	}
	if apierrors.IsNotFound(err) {
		// The cache may lag behind a Job created a moment ago: ask the API
		// before declaring it gone.
		job, err = r.kube.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) || (err == nil && !internal.IsControlledBy(job, owner.GetUID())) {
		r.gate.Release(jobKey)
		return executor.Observation{State: executor.Deleted, Reason: v1beta1.ExecutorDeleted,
			Message: fmt.Sprintf("Job %s was deleted before it reported a result", name)}, 0, nil
	}
	if err != nil {
		return executor.Observation{}, 0, err
	}
	pods, err := r.pods.Pods(ns).List(labels.Everything())
	if err != nil {
		return executor.Observation{}, 0, err
	}
	obs = executor.Observe(job, pods, now, r.cfg.PendingTimeout)
	executor.ExplainNoPod(ctx, r.kube, job, &obs)
	if r.kind.Placed {
		// A Job pod whose node is lost never reports: fail instead of
		// waiting for the pod's eviction (or forever).
		if recheck, err = placement.ObserveNode(ctx, r.kube, job, pods, now, &obs); err != nil {
			return executor.Observation{}, 0, err
		}
	}
	switch obs.State {
	case executor.PendingTooLong, executor.CannotStart, executor.Deleted:
		if err := executor.StopJob(ctx, r.kube, ns, name); err != nil {
			return executor.Observation{}, 0, err
		}
		if r.kind.ReleaseStopped {
			r.gate.Release(jobKey)
		}
	case executor.Succeeded, executor.Failed:
		r.gate.Release(jobKey)
	}
	return obs, recheck, nil
}

// ReleaseFinished hands the finished Jobs of namespace controlled by owner
// (from the cache) that have no ttlSecondsAfterFinished to Kubernetes' TTL
// controller: it sets ttl(job) on them, so the Job and its pod (which, even
// completed, keeps its PersistentVolumeClaims from being deleted) go away
// then. Call it only once the owner's status holds what the Jobs reported.
// It returns how many Jobs it marked.
func (r *Runner) ReleaseFinished(ctx context.Context, owner metav1.Object, ttl func(*batchv1.Job) time.Duration) (int, error) {
	namespace := owner.GetNamespace()
	jobs, err := r.jobs.Jobs(namespace).List(labels.Everything())
	if err != nil {
		return 0, err
	}
	n := 0
	for _, j := range jobs {
		if !internal.IsControlledBy(j, owner.GetUID()) || j.DeletionTimestamp != nil || j.Spec.TTLSecondsAfterFinished != nil || !finished(j) {
			continue
		}
		patch := fmt.Sprintf(`{"spec":{"ttlSecondsAfterFinished":%d}}`, int32(ttl(j).Seconds()))
		_, err := r.kube.BatchV1().Jobs(namespace).Patch(ctx, j.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return n, fmt.Errorf("release finished Job %s/%s: %v", namespace, j.Name, err)
		}
		n++
	}
	return n, nil
}

// FinishedAt returns when Job namespace/name (from the cache) finished, and
// false when it is not known to have finished.
func (r *Runner) FinishedAt(namespace, name string) (time.Time, bool) {
	j, err := r.jobs.Jobs(namespace).Get(name)
	if err != nil {
		return time.Time{}, false
	}
	return finishedAt(j)
}

// finished: the Job is Complete or Failed.
func finished(j *batchv1.Job) bool {
	_, ok := finishedAt(j)
	return ok
}

// finishedAt is when the Job became Complete or Failed.
func finishedAt(j *batchv1.Job) (time.Time, bool) {
	for _, cd := range j.Status.Conditions {
		if (cd.Type == batchv1.JobComplete || cd.Type == batchv1.JobFailed) && cd.Status == corev1.ConditionTrue {
			return cd.LastTransitionTime.Time, true
		}
	}
	return time.Time{}, false
}

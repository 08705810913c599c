// Package hookrun runs the pre and post hooks of BackupSessions and
// RestoreSessions (docs/hooks.md), for both session controllers: an HTTP or
// TCP hook as a short Job of its own in the session's namespace, an exec
// hook in the application's pods through pods/exec. A hook is asked for
// again on every sync until it has an outcome; the caller records the
// outcome as the hook's condition and then stops asking.
package hookrun

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/executor"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/hook"
	"github.com/stowhq/stow/pkg/metrics"
	"github.com/stowhq/stow/pkg/names"
	"github.com/stowhq/stow/pkg/version"
)

// DefaultTimeout bounds one hook run (docs/hooks.md).
const DefaultTimeout = time.Minute

// DefaultStartGrace is how long a hook Job's pod may take to start, on top
// of the hook's timeout.
const DefaultStartGrace = time.Minute

// EventHookFailed is the reason of the Warning Event of a failed hook.
const EventHookFailed = "HookFailed"

// JobBuilder builds the Job of an HTTP or TCP hook (the operator wires it to
// resolve.HookJob): deadline bounds the Job, timeout the hook.
type JobBuilder func(name, namespace string, owner metav1.OwnerReference, hookType string, h v1beta1.Handler, timeout, deadline time.Duration) (*batchv1.Job, error)

// Execer runs a command in a container of a pod (pods/exec).
type Execer interface {
	Exec(ctx context.Context, namespace, pod, container string, command []string) (stdout, stderr string, err error)
}

// Config is what a Runner needs besides its clients.
type Config struct {
	// Timeout bounds one hook run (DefaultTimeout when 0).
	Timeout time.Duration
	// StartGrace is added to a hook Job's bound (DefaultStartGrace when 0).
	StartGrace time.Duration
	// BuildJob makes hook Jobs; nil: HTTP and TCP hooks fail, saying so.
	BuildJob JobBuilder
	// Exec runs exec hooks; nil: exec hooks fail, saying so.
	Exec Execer
}

// WithDefaults fills the unset times.
func (c Config) WithDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.StartGrace <= 0 {
		c.StartGrace = DefaultStartGrace
	}
	return c
}

// Kind says whose hooks a Runner runs.
type Kind struct {
	// Owner is the session kind (v1beta1.KindBackupSession, ...).
	Owner string
	// Annotation names the session on its hook Jobs and their pods, as on
	// its other Jobs: the session controller's event handlers map them back.
	Annotation string
}

// Runner runs the hooks of one session kind.
type Runner struct {
	kind     Kind
	cfg      Config
	kube     kubernetes.Interface
	jobs     batchlisters.JobLister
	pods     corelisters.PodLister
	queue    executor.Requeuer
	recorder record.EventRecorder

	mu    sync.Mutex
	execs map[string]*execRun // by session UID and hook type
}

// New returns a Runner; jobs and pods list Stow's Jobs and pods (the
// label-filtered informers), queue receives the session's key when an exec
// hook ends.
func New(kind Kind, cfg Config, kube kubernetes.Interface, jobs batchlisters.JobLister, pods corelisters.PodLister,
	queue executor.Requeuer, recorder record.EventRecorder) *Runner {
	return &Runner{kind: kind, cfg: cfg.WithDefaults(), kube: kube, jobs: jobs, pods: pods, queue: queue, recorder: recorder,
		execs: map[string]*execRun{}}
}

// Hook is one hook of one session.
type Hook struct {
	// Session owns the hook (its Job is created in its namespace, owned by it).
	Session interface {
		metav1.Object
		runtime.Object
	}
	// Type is v1beta1.HookPreBackup, ...
	Type string
	// Handler is the hook as written; Run renders it over Summary.
	Handler v1beta1.Handler
	Summary hook.Summary
	// Invoker is the name the pods' consent annotation must list (the
	// BackupConfiguration or the RestoreSession).
	Invoker string
	// Claim is the target PVC, whose pods run exec hooks.
	Claim string
	// Deadline, if set, ends the hook too (a pre hook ends with the
	// session's deadline).
	Deadline time.Time
}

// State is where a hook is.
type State int

const (
	// Running: ask again later (Result.Requeue, or when the queue is told).
	Running State = iota
	Succeeded
	Failed
)

// Result is what Run found.
type Result struct {
	State State
	// Message is the one-line cause of Failed, or what succeeded.
	Message string
	// Requeue is when to look again while Running.
	Requeue time.Duration
}

// Run starts the hook or looks at the one started before. A transient API
// error is returned; everything else is in the Result.
func (r *Runner) Run(ctx context.Context, h Hook, now time.Time) (Result, error) {
	rendered, err := hook.Render(h.Handler, h.Summary)
	if err != nil {
		return Result{State: Failed, Message: err.Error()}, nil
	}
	bound := r.cfg.Timeout
	if !h.Deadline.IsZero() {
		left := h.Deadline.Sub(now)
		if left <= 0 {
			return Result{State: Failed, Message: "the session's deadline passed before the hook could run"}, nil
		}
		bound = min(bound, left)
	}
	if rendered.Exec != nil {
		return r.runExec(h, rendered, bound)
	}
	return r.runJob(ctx, h, rendered, bound, now)
}

// Stop ends a hook that is still running (the session's deadline passed):
// its Job is stopped; an exec hook's commands are canceled.
func (r *Runner) Stop(ctx context.Context, session metav1.Object, hookType string) error {
	r.mu.Lock()
	if e := r.execs[execKey(session, hookType)]; e != nil && e.cancel != nil {
		e.cancel()
	}
	delete(r.execs, execKey(session, hookType))
	r.mu.Unlock()
	return executor.StopJob(ctx, r.kube, session.GetNamespace(), names.HookJob(session.GetName(), hookType))
}

// Record tells the world a hook's outcome, once (the caller calls it when it
// records the hook's condition): a Warning Event naming the hook and its
// error when it failed, and the hook metric.
func (r *Runner) Record(session runtime.Object, hookType string, res Result, skipped bool) {
	result := "succeeded"
	switch {
	case skipped:
		result = "skipped"
	case res.State == Failed:
		result = "failed"
		r.recorder.Eventf(session, corev1.EventTypeWarning, EventHookFailed, "%s hook failed: %s", hookType, res.Message)
	}
	metrics.ObserveHook(r.kind.Owner, hookType, result)
}

// Condition is the condition that records a hook's outcome: type
// <Hook>HookExecutionSucceeded, reason SuccessfullyExecuted<Hook>Hook or
// FailedToExecute<Hook>Hook (Stash's names).
func Condition(hookType string, res Result) v1beta1.Condition {
	name := strings.ToUpper(hookType[:1]) + hookType[1:]
	c := v1beta1.Condition{Type: CondType(hookType), Status: v1beta1.ConditionTrue,
		Reason: "SuccessfullyExecuted" + name + "Hook", Message: res.Message}
	if res.State == Failed {
		c.Status, c.Reason = v1beta1.ConditionFalse, "FailedToExecute"+name+"Hook"
	}
	return c
}

// runJob runs an HTTP or TCP hook as a Job and watches it.
func (r *Runner) runJob(ctx context.Context, h Hook, rendered v1beta1.Handler, bound time.Duration, now time.Time) (Result, error) {
	if r.cfg.BuildJob == nil {
		return Result{State: Failed, Message: "this operator runs no hook Jobs (no image configured)"}, nil
	}
	ns, name := h.Session.GetNamespace(), names.HookJob(h.Session.GetName(), h.Type)
	job, err := r.jobs.Jobs(ns).Get(name)
	if apierrors.IsNotFound(err) {
		// The cache may lag behind a Job created a moment ago.
		job, err = r.kube.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) {
		return r.createJob(ctx, h, rendered, name, bound)
	}
	if err != nil {
		return Result{}, err
	}
	if !internal.IsControlledBy(job, h.Session.GetUID()) {
		return Result{State: Failed, Message: fmt.Sprintf("Job %s exists and does not belong to %s %s", name, r.kind.Owner, h.Session.GetName())}, nil
	}
	pods, err := r.pods.Pods(ns).List(labels.Everything())
	if err != nil {
		return Result{}, err
	}
	obs := executor.Observe(job, pods, now, r.cfg.StartGrace)
	executor.ExplainNoPod(ctx, r.kube, job, &obs)
	switch obs.State {
	case executor.Succeeded:
		return Result{State: Succeeded, Message: fmt.Sprintf("%s hook succeeded (Job %s)", h.Type, name)}, nil
	case executor.Failed:
		return Result{State: Failed, Message: jobMessage(obs)}, nil
	case executor.PendingTooLong, executor.CannotStart, executor.Deleted:
		if err := executor.StopJob(ctx, r.kube, ns, name); err != nil {
			return Result{}, err
		}
		return Result{State: Failed, Message: obs.Message}, nil
	case executor.Pending:
		return Result{State: Running, Requeue: obs.RecheckAfter}, nil
	}
	// Running: the Job's activeDeadlineSeconds ends it; look again then.
	end := job.CreationTimestamp.Add(time.Duration(ptrOr(job.Spec.ActiveDeadlineSeconds, 60)) * time.Second)
	return Result{State: Running, Requeue: max(end.Sub(now), time.Second)}, nil
}

func (r *Runner) createJob(ctx context.Context, h Hook, rendered v1beta1.Handler, name string, bound time.Duration) (Result, error) {
	owner := v1beta1.OwnerRef(r.kind.Owner, h.Session.GetName(), h.Session.GetUID())
	job, err := r.cfg.BuildJob(name, h.Session.GetNamespace(), owner, h.Type, rendered, bound, bound+r.cfg.StartGrace)
	if err != nil {
		return Result{State: Failed, Message: err.Error()}, nil
	}
	for _, m := range []*metav1.ObjectMeta{&job.ObjectMeta, &job.Spec.Template.ObjectMeta} {
		if m.Labels == nil {
			m.Labels = map[string]string{}
		}
		m.Labels[v1beta1.LabelManagedBy] = v1beta1.ManagedByStow
		m.Labels[v1beta1.LabelComponent] = v1beta1.ComponentHook
		m.Labels[version.LabelKey] = version.Label()
		if m.Annotations == nil {
			m.Annotations = map[string]string{}
		}
		m.Annotations[r.kind.Annotation] = h.Session.GetName()
	}
	if _, err := r.kube.BatchV1().Jobs(job.Namespace).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return Result{State: Running, Requeue: time.Second}, nil
		}
		if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) {
			return Result{State: Failed, Message: fmt.Sprintf("cannot create hook Job %s: %v", name, err)}, nil
		}
		return Result{}, err
	}
	return Result{State: Running, Requeue: r.cfg.StartGrace}, nil
}

// jobMessage is the hook's own error when `stow run-hook` reported one.
func jobMessage(obs executor.Observation) string {
	for _, res := range obs.Results {
		if res.Error != "" {
			return res.Error
		}
	}
	return obs.Message
}

func ptrOr(p *int64, def int64) int64 {
	if p == nil {
		return def
	}
	return *p
}

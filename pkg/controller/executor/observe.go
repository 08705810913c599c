package executor

import (
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/jobresult"
)

// State is what the watchdog concluded about one Job.
type State int

const (
	// Running: the Job works and has nothing to report yet.
	Running State = iota
	// Pending: the pod is not running yet, but not for too long.
	Pending
	// PendingTooLong: the pod (or the Job's pod creation) has been Pending
	// longer than the threshold; the session must fail instead of hanging.
	PendingTooLong
	// Succeeded: the pod completed; Results hold what the steps reported.
	Succeeded
	// Failed: a step failed; Message is its one-line cause.
	Failed
	// Deleted: the Job or its pod was deleted before a result arrived.
	Deleted
	// CannotStart: a container waits for something waiting cannot bring
	// (CreateContainerConfigError, an invalid image name, ...); the Job must
	// be stopped and the session fail with the kubelet's message.
	CannotStart
)

func (s State) String() string {
	return [...]string{"Running", "Pending", "PendingTooLong", "Succeeded", "Failed", "Deleted", "CannotStart"}[s]
}

// unhealable are container waiting reasons of the kubelet that no amount of
// waiting fixes: the pod spec or image reference is wrong. (ErrImagePull and
// ImagePullBackOff can heal, a registry may come back: the Pending threshold
// applies to them.)
var unhealable = map[string]bool{
	"CreateContainerConfigError": true, // e.g. runAsNonRoot with a root image, a missing Secret key
	"CreateContainerError":       true,
	"InvalidImageName":           true,
	"ErrImageNeverPull":          true,
	"RunContainerError":          true,
}

// UnhealableGrace is how long a pod may show an unhealable waiting reason
// before its session fails: the kubelet reports some of them transiently
// (a Secret created a moment after the pod).
const UnhealableGrace = 20 * time.Second

// Observation is the watchdog's verdict on one Job.
type Observation struct {
	State State
	// Reason is the condition reason for PendingTooLong and Deleted.
	Reason string
	// Message is a one-line cause for PendingTooLong, Failed and Deleted.
	Message string
	// Results are the step results decoded from termination messages, in
	// container order (init containers first).
	Results []jobresult.Result
	// RecheckAfter is when a Pending pod reaches the threshold.
	RecheckAfter time.Duration
	// NoPod: the Job has created no pod (yet); ExplainNoPod can replace the
	// message by the Job's FailedCreate events.
	NoPod bool
}

// maxMessage bounds a message copied from a pod into a status field.
const maxMessage = 512

// Observe inspects a Job and its pods. pods may contain pods of other Jobs;
// only those controlled by job are considered.
func Observe(job *batchv1.Job, pods []*corev1.Pod, now time.Time, pendingTimeout time.Duration) Observation {
	finished, failed := JobFinished(job)
	if job.DeletionTimestamp != nil && !finished {
		return Observation{State: Deleted, Reason: v1beta1.ExecutorDeleted,
			Message: fmt.Sprintf("Job %s was deleted before it reported a result", job.Name)}
	}
	pod := newestPod(job, pods)
	if pod != nil {
		switch pod.Status.Phase {
		case corev1.PodSucceeded:
			return Observation{State: Succeeded, Results: Results(pod)}
		case corev1.PodFailed:
			return Observation{State: Failed, Results: Results(pod), Message: FailureMessage(pod)}
		}
		if pod.DeletionTimestamp != nil {
			if msg, ok := failedContainer(pod); ok {
				return Observation{State: Failed, Results: Results(pod), Message: msg}
			}
			return Observation{State: Deleted, Reason: v1beta1.ExecutorDeleted, Results: Results(pod),
				Message: fmt.Sprintf("pod %s of Job %s was deleted before it reported a result", pod.Name, job.Name)}
		}
		if ended, failed := containersEnded(pod); ended {
			if failed {
				return Observation{State: Failed, Results: Results(pod), Message: FailureMessage(pod)}
			}
			return Observation{State: Succeeded, Results: Results(pod)}
		}
	}
	if finished {
		if !failed {
			var res []jobresult.Result
			if pod != nil {
				res = Results(pod)
			}
			return Observation{State: Succeeded, Results: res}
		}
		why := jobFailure(job)
		if pod == nil {
			return Observation{State: Deleted, Reason: v1beta1.ExecutorDeleted,
				Message: oneLine(fmt.Sprintf("the pod of Job %s was deleted before it reported a result (%s)", job.Name, why))}
		}
		if msg, ok := failedContainer(pod); ok {
			return Observation{State: Failed, Results: Results(pod), Message: msg}
		}
		return Observation{State: Failed, Results: Results(pod), Message: oneLine(fmt.Sprintf("Job %s failed: %s", job.Name, why))}
	}
	if pod == nil {
		since := job.CreationTimestamp.Time
		if waited := now.Sub(since); waited < pendingTimeout {
			return Observation{State: Pending, RecheckAfter: pendingTimeout - waited, NoPod: true}
		}
		msg := fmt.Sprintf("Job %s has created no pod for longer than %s", job.Name, pendingTimeout)
		if why := jobFailure(job); why != "" {
			msg += ": " + why
		} else {
			msg += " (a ResourceQuota, LimitRange or admission policy may reject it; see the Job's events)"
		}
		return Observation{State: PendingTooLong, Reason: v1beta1.PodHasBeenInPendingStateForLongerThanExpected, Message: oneLine(msg), NoPod: true}
	}
	if name, w := unhealableWait(pod); w != nil {
		if waited := now.Sub(pod.CreationTimestamp.Time); waited < UnhealableGrace {
			return Observation{State: Pending, RecheckAfter: UnhealableGrace - waited}
		}
		msg := fmt.Sprintf("container %s of pod %s cannot start: %s", name, pod.Name, w.Reason)
		if w.Message != "" {
			msg += ": " + w.Message
		}
		return Observation{State: CannotStart, Reason: v1beta1.ContainerCannotStart, Results: Results(pod), Message: oneLine(msg)}
	}
	// A pod stays in phase Pending while its init containers run, and the
	// backup steps are init containers: only a pod none of whose containers
	// has started yet is waiting. (Counting a running init container as
	// Pending failed every backup longer than the threshold.)
	if (pod.Status.Phase == corev1.PodPending || pod.Status.Phase == "") && !anyContainerStarted(pod) {
		since := pod.CreationTimestamp.Time
		if waited := now.Sub(since); waited < pendingTimeout {
			return Observation{State: Pending, RecheckAfter: pendingTimeout - waited}
		}
		return Observation{State: PendingTooLong, Reason: v1beta1.PodHasBeenInPendingStateForLongerThanExpected,
			Message: oneLine(fmt.Sprintf("pod %s has been Pending for longer than %s: %s", pod.Name, pendingTimeout, PendingMessage(pod)))}
	}
	return Observation{State: Running}
}

// containersEnded tells whether the pod's outcome is settled although its
// phase does not say so yet, and whether it failed. The kubelet reports the
// last container's exit at once but the pod's phase only after it has torn
// the pod down (its sandbox, its volumes): about a second later, measured on
// the local cluster (docs/performance.md). In a pod that never restarts a
// container (restartPolicy Never, no sidecar) and is not being deleted,
// nothing can change once every container has exited, or once an init
// container has failed (the containers after it never start). The results
// are final then: the termination messages are in the exit states.
func containersEnded(pod *corev1.Pod) (ended, failed bool) {
	if pod.Spec.RestartPolicy != corev1.RestartPolicyNever || pod.DeletionTimestamp != nil || len(pod.Spec.Containers) == 0 {
		return false, false
	}
	exit := map[string]*corev1.ContainerStateTerminated{}
	for _, cs := range statuses(pod) {
		if cs.State.Terminated != nil {
			exit[cs.Name] = cs.State.Terminated
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			return false, false // a sidecar: the phase decides
		}
		t := exit[c.Name]
		if t == nil {
			return false, false
		}
		if t.ExitCode != 0 {
			return true, true
		}
	}
	for _, c := range pod.Spec.Containers {
		t := exit[c.Name]
		if t == nil {
			return false, false
		}
		failed = failed || t.ExitCode != 0
	}
	return true, failed
}

// unhealableWait returns the first container waiting for a reason waiting
// cannot fix.
func unhealableWait(pod *corev1.Pod) (string, *corev1.ContainerStateWaiting) {
	for _, cs := range statuses(pod) {
		if w := cs.State.Waiting; w != nil && unhealable[w.Reason] {
			return cs.Name, w
		}
	}
	return "", nil
}

// NoPodMessage explains why a Job has no pod from its FailedCreate events
// (the Job controller's record of the API server's refusal: PodSecurity, a
// ResourceQuota, an admission policy), newest first; "" without one.
func NoPodMessage(job *batchv1.Job, events []corev1.Event) string {
	var newest *corev1.Event
	for i := range events {
		ev := &events[i]
		if ev.Reason != "FailedCreate" || ev.InvolvedObject.UID != job.UID {
			continue
		}
		if newest == nil || eventTime(ev).After(eventTime(newest)) {
			newest = ev
		}
	}
	if newest == nil {
		return ""
	}
	return oneLine(fmt.Sprintf("Job %s cannot create its pod: %s", job.Name, newest.Message))
}

func eventTime(ev *corev1.Event) time.Time {
	switch {
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp.Time
	case !ev.EventTime.IsZero():
		return ev.EventTime.Time
	}
	return ev.CreationTimestamp.Time
}

// anyContainerStarted tells whether a container (init or main) of pod runs
// or has run.
func anyContainerStarted(pod *corev1.Pod) bool {
	for _, cs := range statuses(pod) {
		if cs.State.Running != nil || cs.State.Terminated != nil {
			return true
		}
	}
	return false
}

// newestPod returns the newest pod controlled by job (backoffLimit is 0, so
// there is normally exactly one).
func newestPod(job *batchv1.Job, pods []*corev1.Pod) *corev1.Pod {
	var own []*corev1.Pod
	for _, p := range pods {
		if internal.IsControlledBy(p, job.UID) {
			own = append(own, p)
		}
	}
	if len(own) == 0 {
		return nil
	}
	sort.Slice(own, func(i, j int) bool {
		if !own[i].CreationTimestamp.Equal(&own[j].CreationTimestamp) {
			return own[i].CreationTimestamp.Before(&own[j].CreationTimestamp)
		}
		return own[i].Name < own[j].Name
	})
	return own[len(own)-1]
}

func statuses(pod *corev1.Pod) []corev1.ContainerStatus {
	out := append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...)
	return append(out, pod.Status.ContainerStatuses...)
}

// Results decodes every container's termination message that is a Stow
// result; messages of other containers (hooks, logs) are skipped.
func Results(pod *corev1.Pod) []jobresult.Result {
	var out []jobresult.Result
	for _, cs := range statuses(pod) {
		t := cs.State.Terminated
		if t == nil || t.Message == "" {
			continue
		}
		if r, err := jobresult.Decode(t.Message); err == nil {
			out = append(out, r)
		}
	}
	return out
}

// FailureMessage is the one-line cause of a failed pod: the failing step's
// reported error, else its last log line, else its exit code and reason.
func FailureMessage(pod *corev1.Pod) string {
	if msg, ok := failedContainer(pod); ok {
		return msg
	}
	if pod.Status.Reason != "" || pod.Status.Message != "" {
		return oneLine(fmt.Sprintf("pod %s failed: %s %s", pod.Name, pod.Status.Reason, pod.Status.Message))
	}
	return fmt.Sprintf("pod %s failed without a reason", pod.Name)
}

func failedContainer(pod *corev1.Pod) (string, bool) {
	for _, cs := range statuses(pod) {
		t := cs.State.Terminated
		if t == nil || t.ExitCode == 0 {
			continue
		}
		if r, err := jobresult.Decode(t.Message); err == nil && r.Error != "" {
			return oneLine(fmt.Sprintf("step %s failed: %s", cs.Name, r.Error)), true
		}
		if t.Reason == "OOMKilled" {
			return fmt.Sprintf("step %s was OOMKilled (exit code %d); raise runtimeSettings.container.resources.limits.memory", cs.Name, t.ExitCode), true
		}
		if line := lastLine(t.Message); line != "" {
			return oneLine(fmt.Sprintf("step %s failed (exit code %d): %s", cs.Name, t.ExitCode, line)), true
		}
		msg := fmt.Sprintf("step %s exited with code %d", cs.Name, t.ExitCode)
		if t.Reason != "" {
			msg += " (" + t.Reason + ")"
		}
		return msg, true
	}
	return "", false
}

// PendingMessage explains why a pod is Pending: the scheduler's verdict or
// the first waiting container's reason.
func PendingMessage(pod *corev1.Pod) string {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return strings.TrimSpace(fmt.Sprintf("not scheduled: %s %s", c.Reason, c.Message))
		}
	}
	for _, cs := range statuses(pod) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			msg := fmt.Sprintf("container %s is waiting: %s", cs.Name, w.Reason)
			if w.Message != "" {
				msg += ": " + w.Message
			}
			if w.Reason == "ContainerCreating" || w.Reason == "PodInitializing" {
				msg += " (see the pod's events: a volume may be missing or attached to another node)"
			}
			return msg
		}
	}
	return "no container started (see the pod's events)"
}

func jobFailure(job *batchv1.Job) string {
	for _, c := range job.Status.Conditions {
		if c.Status == corev1.ConditionTrue && (c.Type == batchv1.JobFailed || c.Type == batchv1.JobFailureTarget) {
			return strings.TrimSpace(c.Reason + ": " + c.Message)
		}
	}
	return ""
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// oneLine flattens s to one bounded line, for status fields and conditions.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxMessage {
		s = s[:maxMessage]
		for !utf8.ValidString(s) { // do not cut a character in two
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return s
}

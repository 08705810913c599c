package executor

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// A pod is in phase Pending while its init containers run; the backup steps
// are init containers, so a long backup must not count as a pod stuck Pending.
func TestObservePendingOnlyUntilAContainerStarts(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	created := metav1.NewTime(now.Add(-10 * time.Minute))
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "stow-backup-s", UID: "job-uid", CreationTimestamp: created}}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	done := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}
	waiting := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}
	cases := []struct {
		name       string
		init, main []corev1.ContainerState
		want       State
	}{
		{"nothing started", []corev1.ContainerState{waiting}, []corev1.ContainerState{waiting}, PendingTooLong},
		{"no statuses yet", nil, nil, PendingTooLong},
		{"first step running", []corev1.ContainerState{running, waiting}, []corev1.ContainerState{waiting}, Running},
		{"second step running", []corev1.ContainerState{done, running}, []corev1.ContainerState{waiting}, Running},
		{"init done, main not yet", []corev1.ContainerState{done}, []corev1.ContainerState{waiting}, Running},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "p", CreationTimestamp: created, OwnerReferences: []metav1.OwnerReference{
					{APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID, Controller: ptr.To(true)}}},
				Status: corev1.PodStatus{Phase: corev1.PodPending},
			}
			for i, st := range tc.init {
				pod.Status.InitContainerStatuses = append(pod.Status.InitContainerStatuses, corev1.ContainerStatus{Name: "step-" + string(rune('a'+i)), State: st})
			}
			for _, st := range tc.main {
				pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{Name: "update-status", State: st})
			}
			got := Observe(job, []*corev1.Pod{pod}, now, 5*time.Minute)
			if got.State != tc.want {
				t.Fatalf("Observe = %s (%s); want %s", got.State, got.Message, tc.want)
			}
		})
	}
}

// A container that cannot start (a securityContext the kubelet refuses, an
// invalid image name) fails the session after a short grace with the
// kubelet's message, instead of waiting out the Pending threshold.
func TestObserveUnhealableContainer(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "stow-backup-s", UID: "job-uid", CreationTimestamp: metav1.NewTime(now.Add(-time.Minute))}}
	pod := func(age time.Duration, reason, msg string, started bool) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "p", CreationTimestamp: metav1.NewTime(now.Add(-age)), OwnerReferences: []metav1.OwnerReference{
				{APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID, Controller: ptr.To(true)}}},
			Status: corev1.PodStatus{Phase: corev1.PodPending},
		}
		first := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}
		second := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}
		if started { // the first step ran, the second cannot start
			first, second = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{}}, first
		}
		p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "pvc-backup-0", State: first}, {Name: "update-status-1", State: second}}
		return p
	}
	const kubelet = "container has runAsNonRoot and image will run as root (pod: \"p\", container: pvc-backup-0)"
	got := Observe(job, []*corev1.Pod{pod(30*time.Second, "CreateContainerConfigError", kubelet, false)}, now, 5*time.Minute)
	if got.State != CannotStart || got.Reason != v1beta1.ContainerCannotStart ||
		got.Message != "container pvc-backup-0 of pod p cannot start: CreateContainerConfigError: "+kubelet {
		t.Fatalf("Observe = %+v", got)
	}
	if got := Observe(job, []*corev1.Pod{pod(5*time.Second, "CreateContainerConfigError", kubelet, false)}, now, 5*time.Minute); got.State != Pending || got.RecheckAfter != 15*time.Second {
		t.Errorf("within the grace: %+v", got)
	}
	if got := Observe(job, []*corev1.Pod{pod(time.Minute, "InvalidImageName", "bad ref", true)}, now, 5*time.Minute); got.State != CannotStart || got.Message != "container update-status-1 of pod p cannot start: InvalidImageName: bad ref" {
		t.Errorf("later step: %+v", got)
	}
	// An image pull may heal: the Pending threshold applies.
	if got := Observe(job, []*corev1.Pod{pod(time.Minute, "ImagePullBackOff", "", false)}, now, 5*time.Minute); got.State != Pending {
		t.Errorf("ImagePullBackOff: %+v", got)
	}
}

// A Job that cannot create its pod: the session quotes the refusal.
func TestNoPodMessageQuotesFailedCreate(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "stow-backup-s", UID: "job-uid", CreationTimestamp: metav1.NewTime(now.Add(-time.Hour))}}
	obs := Observe(job, nil, now, 40*time.Second)
	if obs.State != PendingTooLong || !obs.NoPod {
		t.Fatalf("Observe = %+v", obs)
	}
	evs := []corev1.Event{
		{InvolvedObject: corev1.ObjectReference{UID: "other"}, Reason: "FailedCreate", Message: "not mine", LastTimestamp: metav1.NewTime(now)},
		{InvolvedObject: corev1.ObjectReference{UID: "job-uid"}, Reason: "FailedCreate", Message: "old", LastTimestamp: metav1.NewTime(now.Add(-time.Minute))},
		{InvolvedObject: corev1.ObjectReference{UID: "job-uid"}, Reason: "FailedCreate", Message: `Error creating: pods "x" is forbidden: violates PodSecurity "restricted:latest": runAsNonRoot != true`, LastTimestamp: metav1.NewTime(now.Add(-time.Second))},
		{InvolvedObject: corev1.ObjectReference{UID: "job-uid"}, Reason: "SuccessfulCreate", Message: "later", LastTimestamp: metav1.NewTime(now)},
	}
	want := `Job stow-backup-s cannot create its pod: Error creating: pods "x" is forbidden: violates PodSecurity "restricted:latest": runAsNonRoot != true`
	if got := NoPodMessage(job, evs); got != want {
		t.Errorf("NoPodMessage = %q\nwant %q", got, want)
	}
	if got := NoPodMessage(job, evs[:1]); got != "" {
		t.Errorf("without an event of the Job: %q", got)
	}
}

// The kubelet reports the last container's exit about a second before the
// pod's phase: a pod that restarts nothing is settled once its containers
// have exited (or an init container failed), whatever its phase says.
func TestObserveSettledBeforeThePodPhase(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	created := metav1.NewTime(now.Add(-time.Minute))
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "stow-backup-s", UID: "job-uid", CreationTimestamp: created}}
	ok := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Message: `{"step":"backup-pvc"}`}}
	bad := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Message: `{"step":"backup-pvc","error":"boom"}`}}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	waiting := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}
	always := corev1.ContainerRestartPolicyAlways
	cases := []struct {
		name        string
		restart     corev1.RestartPolicy
		deleted     bool
		sidecar     bool
		step, final corev1.ContainerState
		want        State
	}{
		{"every container exited 0", corev1.RestartPolicyNever, false, false, ok, ok, Succeeded},
		{"the init step failed: the last never starts", corev1.RestartPolicyNever, false, false, bad, waiting, Failed},
		{"the last step failed", corev1.RestartPolicyNever, false, false, ok, bad, Failed},
		{"the last step runs", corev1.RestartPolicyNever, false, false, ok, running, Running},
		{"containers may restart", corev1.RestartPolicyOnFailure, false, false, ok, ok, Running},
		{"a sidecar: the phase decides", corev1.RestartPolicyNever, false, true, ok, ok, Running},
		{"being deleted: not settled by exits", corev1.RestartPolicyNever, true, false, ok, ok, Deleted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "p", CreationTimestamp: created, OwnerReferences: []metav1.OwnerReference{
					{APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID, Controller: ptr.To(true)}}},
				Spec: corev1.PodSpec{RestartPolicy: tc.restart,
					InitContainers: []corev1.Container{{Name: "pvc-backup-0"}}, Containers: []corev1.Container{{Name: "update-status-1"}}},
				Status: corev1.PodStatus{Phase: corev1.PodRunning,
					InitContainerStatuses: []corev1.ContainerStatus{{Name: "pvc-backup-0", State: tc.step}},
					ContainerStatuses:     []corev1.ContainerStatus{{Name: "update-status-1", State: tc.final}}},
			}
			if tc.sidecar {
				pod.Spec.InitContainers[0].RestartPolicy = &always
			}
			if tc.deleted {
				pod.DeletionTimestamp = &created
			}
			got := Observe(job, []*corev1.Pod{pod}, now, 5*time.Minute)
			if got.State != tc.want {
				t.Fatalf("Observe = %s (%s); want %s", got.State, got.Message, tc.want)
			}
			if got.State == Failed && got.Message != "step pvc-backup-0 failed: boom" && got.Message != "step update-status-1 failed: boom" {
				t.Errorf("message %q does not name the failed step and its error", got.Message)
			}
			if got.State == Succeeded && len(got.Results) != 2 {
				t.Errorf("results = %+v; want both steps' reports", got.Results)
			}
		})
	}
}

package executor

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
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

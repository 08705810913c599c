package controllertest

import (
	"context"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/stowhq/stow/pkg/jobresult"
)

// FinishHookJob ends the hook Job name in ns as its pod would: it
// succeeded, or failed with the error `stow run-hook` reports. Call Resync
// afterwards.
func FinishHookJob(t testing.TB, kube kubernetes.Interface, ns, name string, ok bool, errMsg string) {
	t.Helper()
	ctx := context.Background()
	j, err := kube.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("hook Job %s: %v", name, err)
	}
	j.UID = types.UID("job-" + name)
	phase, code := corev1.PodSucceeded, int32(0)
	j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	if !ok {
		phase, code = corev1.PodFailed, 1
		j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded"}}
	}
	if _, err := kube.BatchV1().Jobs(ns).Update(ctx, j, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-xyz", Namespace: ns, CreationTimestamp: j.CreationTimestamp,
			Labels: j.Spec.Template.Labels, Annotations: j.Spec.Template.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(j, batchv1.SchemeGroupVersion.WithKind("Job"))}},
		Status: corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{{Name: "hook", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Message: string(jobresult.Encode(jobresult.Result{Step: "run-hook", Error: errMsg}))}}}}},
	}
	if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

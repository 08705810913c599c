package hookrun

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

func pod(name, claim, consent string, phase corev1.PodPhase) corev1.Pod {
	p := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "app"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "proxy"}, {Name: "db", VolumeMounts: []corev1.VolumeMount{{Name: "v", MountPath: "/d"}}}},
			Volumes:    []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}},
		},
		Status: corev1.PodStatus{Phase: phase},
	}
	if consent != "" {
		p.Annotations = map[string]string{v1beta1.AnnotationExecHooks: consent}
	}
	return p
}

// backupPod is a pod of a Stow backup Job whose container has not exited.
func backupPod(name, claim string) corev1.Pod {
	p := pod(name, claim, "", corev1.PodRunning)
	p.Labels = map[string]string{v1beta1.LabelManagedBy: v1beta1.ManagedByStow}
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: name, UID: "u", Controller: ptr.To(true)}}
	return p
}

// exitedPod is a pod the kubelet still reports Running whose containers have
// all terminated.
func exitedPod(name, claim string) corev1.Pod {
	p := pod(name, claim, "", corev1.PodRunning)
	for _, c := range p.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: c.Name,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}})
	}
	return p
}

func labelledOnly(name, claim string) corev1.Pod {
	p := pod(name, claim, "", corev1.PodRunning)
	p.Labels = map[string]string{v1beta1.LabelManagedBy: v1beta1.ManagedByStow}
	return p
}

func TestTargets(t *testing.T) {
	for _, tc := range []struct {
		name      string
		pods      []corev1.Pod
		container string
		want      string // pod/container,... or the error's start
	}{
		{"first container mounting the claim", []corev1.Pod{pod("a", "data", "bc", corev1.PodRunning)}, "", "a/db"},
		{"containerName", []corev1.Pod{pod("a", "data", "x, bc", corev1.PodRunning)}, "proxy", "a/proxy"},
		{"every running pod (RWX)", []corev1.Pod{pod("b", "data", "*", corev1.PodRunning), pod("a", "data", "bc", corev1.PodRunning),
			pod("c", "data", "", corev1.PodSucceeded), pod("d", "other", "", corev1.PodRunning)}, "", "a/db,b/db"},
		{"no pod", []corev1.Pod{pod("d", "other", "*", corev1.PodRunning)}, "", "no Running pod in app mounts PVC data"},
		{"no consent", []corev1.Pod{pod("a", "data", "bc-other", corev1.PodRunning)}, "", "pod a uses PVC data but does not consent"},
		{"Stow's own Job pod, not yet reported finished", []corev1.Pod{pod("a", "data", "bc", corev1.PodRunning), backupPod("stow-backup-x", "data")}, "", "a/db"},
		{"a pod whose containers all exited", []corev1.Pod{pod("a", "data", "bc", corev1.PodRunning), exitedPod("b", "data")}, "", "a/db"},
		{"a pod labelled Stow's without a Job is an application pod", []corev1.Pod{pod("a", "data", "bc", corev1.PodRunning), labelledOnly("b", "data")}, "", "pod b uses PVC data but does not consent"},
		{"missing container", []corev1.Pod{pod("a", "data", "bc", corev1.PodRunning)}, "nope", `pod a uses PVC data but has no container "nope"`},
	} {
		got, why := Targets(tc.pods, "data", "bc", tc.container)
		var s []string
		for _, g := range got {
			s = append(s, g.pod+"/"+g.container)
		}
		if out := strings.Join(s, ","); out != tc.want && !strings.HasPrefix(why, tc.want) {
			t.Errorf("%s: got %q / %q, want %q", tc.name, out, why, tc.want)
		}
	}
}

func TestCondition(t *testing.T) {
	c := Condition(v1beta1.HookPostRestore, Result{State: Failed, Message: "m"})
	if c.Type != v1beta1.PostRestoreHookExecutionSucceeded || c.Reason != v1beta1.FailedToExecutePostRestoreHook || c.Status != v1beta1.ConditionFalse {
		t.Fatalf("%+v", c)
	}
	c = Condition(v1beta1.HookPreBackup, Result{State: Succeeded})
	if c.Type != v1beta1.PreBackupHookExecutionSucceeded || c.Reason != v1beta1.SuccessfullyExecutedPreBackupHook || c.Status != v1beta1.ConditionTrue {
		t.Fatalf("%+v", c)
	}
}

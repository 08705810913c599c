package hookrun

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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

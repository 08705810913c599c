package main

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestJobImageIsTheOperatorsOwn(t *testing.T) {
	kube := fake.NewClientset(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "op-1", Namespace: "stow-system"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "sidecar", Image: "proxy:1"},
			{Name: "operator", Image: "registry.example/stow:v0.3.0"},
		}},
	})
	ctx := context.Background()
	t.Setenv("POD_NAMESPACE", "stow-system")

	t.Setenv("POD_NAME", "op-1")
	if got := jobImage(ctx, kube, ""); got != "registry.example/stow:v0.3.0" {
		t.Errorf("own image: %q", got)
	}
	if got := jobImage(ctx, kube, "mine:1"); got != "mine:1" {
		t.Errorf("--image given: %q", got)
	}
	t.Setenv("POD_NAME", "gone")
	if got := jobImage(ctx, kube, ""); got != "docker.io/stowhq/stow:dev" {
		t.Errorf("unreadable pod: %q", got)
	}
	t.Setenv("POD_NAME", "")
	if got := jobImage(ctx, kube, ""); got != "docker.io/stowhq/stow:dev" {
		t.Errorf("outside a pod: %q", got)
	}
}

package main

import (
	"context"
	"fmt"
	"os"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/stowhq/stow/pkg/version"
)

// operatorContainer is the container of deploy/deployment.yaml (and the Helm
// chart) that runs stow-operator.
const operatorContainer = "operator"

// jobImage is the image the Jobs run when --image is not given: the one this
// operator runs in, read from its own Pod (the operator may read pods), so
// that the image is set in one place of an install. Outside a Pod, or when
// the Pod cannot be read, it is the published image of this version.
func jobImage(ctx context.Context, kube kubernetes.Interface, flag string) string {
	if flag != "" {
		return flag
	}
	fallback := defaultImageRepo + ":" + version.Label()
	name, ns := os.Getenv("POD_NAME"), os.Getenv("POD_NAMESPACE")
	if name == "" || ns == "" {
		return fallback
	}
	img, err := ownImage(ctx, kube, ns, name)
	if err != nil {
		klog.FromContext(ctx).Info("Cannot read the operator's own image; Jobs use the default", "image", fallback, "err", err)
		return fallback
	}
	return img
}

func ownImage(ctx context.Context, kube kubernetes.Interface, ns, name string) (string, error) {
	pod, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == operatorContainer {
			return c.Image, nil
		}
	}
	return "", fmt.Errorf("pod %s/%s has no container %q", ns, name, operatorContainer)
}

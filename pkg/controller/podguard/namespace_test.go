package podguard

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/stowhq/stow/pkg/resolve"
)

func TestNamespaceEnforcesRestricted(t *testing.T) {
	kube := fake.NewSimpleClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "strict", Labels: map[string]string{resolve.LabelPodSecurityEnforce: resolve.PodSecurityRestricted}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "baseline", Labels: map[string]string{resolve.LabelPodSecurityEnforce: "baseline"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plain"}},
	)
	enforces := NamespaceEnforcesRestricted(kube, PodSecurityTTL)
	for ns, want := range map[string]bool{"strict": true, "baseline": false, "plain": false, "missing": false} {
		if got := enforces(ns); got != want {
			t.Errorf("namespace %s enforces restricted = %v, want %v", ns, got, want)
		}
	}
	reads := len(kube.Actions())
	enforces("strict")
	if len(kube.Actions()) != reads {
		t.Error("a remembered answer was read again within the TTL")
	}
}

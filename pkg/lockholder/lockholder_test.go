package lockholder

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

func pod(name string, phase corev1.PodPhase) corev1.Pod {
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Status: corev1.PodStatus{Phase: phase}}
}

func TestHandlerAndAsk(t *testing.T) {
	const prefix = "stow-0123abcd-"
	pods := map[string][]corev1.Pod{
		prefix + "running":  {pod("backup-a", corev1.PodRunning)},
		prefix + "pending":  {pod("backup-b", corev1.PodPending)},
		prefix + "finished": {pod("backup-c", corev1.PodSucceeded)},
		prefix + "failed":   {pod("backup-d", corev1.PodFailed)},
	}
	var asked []string
	srv := httptest.NewServer(Handler(prefix, func(_ context.Context, sel string) ([]corev1.Pod, error) {
		asked = append(asked, sel)
		host := strings.TrimPrefix(sel, v1beta1.LabelResticHost+"=")
		if host == prefix+"broken" {
			return nil, errors.New("apiserver down")
		}
		return pods[host], nil
	}))
	defer srv.Close()
	ctx := context.Background()
	for host, want := range map[string]bool{
		prefix + "running": true, prefix + "pending": true,
		prefix + "finished": false, prefix + "failed": false, prefix + "deleted": false,
	} {
		a, err := Ask(ctx, nil, srv.URL, host)
		if err != nil || a.Runs != want {
			t.Errorf("Ask(%s) = %+v, %v; want runs=%v", host, a, err, want)
		}
	}
	// What the operator cannot answer is an error, never "gone".
	for _, host := range []string{prefix + "broken", "stow-ffffffff-other", "laptop"} {
		if a, err := Ask(ctx, nil, srv.URL, host); err == nil {
			t.Errorf("Ask(%s) = %+v, want an error", host, a)
		}
	}
	if _, err := Ask(ctx, nil, "", prefix+"x"); err == nil {
		t.Error("Ask without an operator URL succeeded")
	}
	for _, sel := range asked {
		if !strings.HasPrefix(sel, v1beta1.LabelResticHost+"="+prefix) {
			t.Errorf("listed pods with selector %q", sel)
		}
	}
}

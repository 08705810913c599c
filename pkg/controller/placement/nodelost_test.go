package placement

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8sfake "k8s.io/client-go/kubernetes/fake"
)

func TestNodeLost(t *testing.T) {
	now := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	grace := time.Minute
	job := types.UID("job-uid")
	pod := func(node string, ready corev1.ConditionStatus, mutate ...func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "backup-x", Namespace: ns,
			OwnerReferences: []metav1.OwnerReference{{Kind: "Job", Name: "backup", UID: job, Controller: ptrTrue()}}},
			Spec:   corev1.PodSpec{NodeName: node},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}}}
		for _, m := range mutate {
			m(p)
		}
		return p
	}
	notReadySince := func(d time.Duration) func(*corev1.Node) {
		return func(n *corev1.Node) {
			n.Status.Conditions[0] = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown,
				Reason: "NodeStatusUnknown", LastTransitionTime: metav1.NewTime(now.Add(-d))}
		}
	}
	cases := []struct {
		name    string
		objs    []runtime.Object
		pod     *corev1.Pod
		lost    []string
		recheck time.Duration
		reads   int
	}{
		{name: "ready pod: the node is not read", objs: []runtime.Object{node("b", notReadySince(time.Hour))},
			pod: pod("b", corev1.ConditionTrue)},
		{name: "node ready: look again later", objs: []runtime.Object{node("b")}, pod: pod("b", corev1.ConditionFalse), reads: 1,
			recheck: NodeCheckInterval},
		{name: "NotReady for less than the grace: look again", objs: []runtime.Object{node("b", notReadySince(20*time.Second))},
			pod: pod("b", corev1.ConditionFalse), recheck: 40 * time.Second, reads: 1},
		{name: "NotReady, the grace ends first", objs: []runtime.Object{node("b", notReadySince(50*time.Second))},
			pod: pod("b", corev1.ConditionFalse), recheck: 10 * time.Second, reads: 1},
		{name: "NotReady for longer: lost", objs: []runtime.Object{node("b", notReadySince(2*time.Minute))},
			pod: pod("b", corev1.ConditionFalse), reads: 1,
			lost: []string{"node b of pod backup-x is NotReady", "Ready=Unknown, NodeStatusUnknown", "2026-03-01T01:58:00Z"}},
		{name: "node deleted: lost", pod: pod("b", corev1.ConditionFalse), reads: 1, lost: []string{"node b of pod backup-x was deleted"}},
		{name: "another Job's pod", objs: []runtime.Object{node("b", notReadySince(time.Hour))},
			pod: pod("b", corev1.ConditionFalse, func(p *corev1.Pod) { p.OwnerReferences[0].UID = "other" })},
		{name: "finished pod", objs: []runtime.Object{node("b", notReadySince(time.Hour))},
			pod: pod("b", corev1.ConditionFalse, func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded })},
		{name: "unscheduled pod", pod: pod("", corev1.ConditionFalse)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kube := k8sfake.NewSimpleClientset(tc.objs...)
			msg, recheck, err := NodeLost(context.Background(), kube, job, []*corev1.Pod{tc.pod}, now, grace)
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.lost) == 0 && msg != "" {
				t.Fatalf("lost: %s", msg)
			}
			for _, sub := range tc.lost {
				if !strings.Contains(msg, sub) {
					t.Errorf("message %q does not contain %q", msg, sub)
				}
			}
			if recheck != tc.recheck {
				t.Errorf("recheck %s, want %s", recheck, tc.recheck)
			}
			if got := len(kube.Actions()); got != tc.reads {
				t.Errorf("%d API reads, want %d", got, tc.reads)
			}
		})
	}
}

func ptrTrue() *bool { b := true; return &b }

package placement

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const ns = "app"

func pvc(name string, modes ...corev1.PersistentVolumeAccessMode) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: modes}}
}

func appPod(name, node, claim string, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{NodeName: node, Volumes: []corev1.Volume{{Name: "v",
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}}},
		Status: corev1.PodStatus{Phase: phase}}
}

func node(name string, mutate ...func(*corev1.Node)) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
	for _, m := range mutate {
		m(n)
	}
	return n
}

// jobPod is a Job pod template that mounts the given claims.
func jobPod(claims ...string) *corev1.PodTemplateSpec {
	t := &corev1.PodTemplateSpec{}
	for _, c := range claims {
		t.Spec.Volumes = append(t.Spec.Volumes, corev1.Volume{Name: "t-" + c,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c}}})
	}
	t.Spec.Volumes = append(t.Spec.Volumes, corev1.Volume{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	return t
}

func pinnedTo(t *testing.T, spec *corev1.PodSpec) []string {
	t.Helper()
	if spec.Affinity == nil || spec.Affinity.NodeAffinity == nil || spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return nil
	}
	var out []string
	for _, term := range spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, f := range term.MatchFields {
			if f.Key == "metadata.name" && f.Operator == corev1.NodeSelectorOpIn {
				out = append(out, strings.Join(f.Values, ","))
			}
		}
	}
	return out
}

func TestPlacement(t *testing.T) {
	rwo, rwx, rwop := corev1.ReadWriteOnce, corev1.ReadWriteMany, corev1.ReadWriteOncePod
	cases := []struct {
		name    string
		objs    []runtime.Object
		tmpl    *corev1.PodTemplateSpec
		pod     func(*corev1.PodSpec)
		node    string   // the pin, "" none
		refusal []string // substrings of the refusal
	}{
		{name: "RWO in use: pinned to the user's node",
			objs: []runtime.Object{pvc("data", rwo), appPod("app-0", "b", "data", corev1.PodRunning), node("a"), node("b")},
			tmpl: jobPod("data"), node: "b"},
		{name: "RWO, bound modes win over the requested ones",
			objs: []runtime.Object{func() *corev1.PersistentVolumeClaim {
				p := pvc("data", rwx)
				p.Status.AccessModes = []corev1.PersistentVolumeAccessMode{rwo}
				return p
			}(), appPod("app-0", "b", "data", corev1.PodRunning), node("b")},
			tmpl: jobPod("data"), node: "b"},
		{name: "RWX in use: not pinned",
			objs: []runtime.Object{pvc("data", rwx), appPod("app-0", "b", "data", corev1.PodRunning), node("b")},
			tmpl: jobPod("data")},
		{name: "RWO and RWX: many nodes may mount it",
			objs: []runtime.Object{pvc("data", rwo, rwx), appPod("app-0", "b", "data", corev1.PodRunning), node("b")},
			tmpl: jobPod("data")},
		{name: "RWO unused (finished and unscheduled pods do not count)",
			objs: []runtime.Object{pvc("data", rwo), appPod("done", "b", "data", corev1.PodSucceeded),
				appPod("failed", "b", "data", corev1.PodFailed), appPod("pending", "", "data", corev1.PodPending), node("b")},
			tmpl: jobPod("data")},
		{name: "RWO used by a pod of another claim only",
			objs: []runtime.Object{pvc("data", rwo), appPod("app-0", "b", "other", corev1.PodRunning), node("b")},
			tmpl: jobPod("data")},
		{name: "missing PVC: left to the session's own checks",
			objs: []runtime.Object{appPod("app-0", "b", "data", corev1.PodRunning)},
			tmpl: jobPod("data")},
		{name: "RWOP in use: refused",
			objs:    []runtime.Object{pvc("data", rwop), appPod("app-0", "b", "data", corev1.PodRunning), node("b")},
			tmpl:    jobPod("data"),
			refusal: []string{"ReadWriteOncePod", "pod app-0", "node b"}},
		{name: "RWO in use on two nodes: refused",
			objs: []runtime.Object{pvc("data", rwo), appPod("app-0", "a", "data", corev1.PodRunning),
				appPod("app-1", "b", "data", corev1.PodRunning), node("a"), node("b")},
			tmpl:    jobPod("data"),
			refusal: []string{"2 nodes", "pod app-0 on node a", "pod app-1 on node b"}},
		{name: "two RWO claims on different nodes: refused",
			objs: []runtime.Object{pvc("data", rwo), pvc("logs", rwo), appPod("app-0", "a", "data", corev1.PodRunning),
				appPod("log-0", "b", "logs", corev1.PodRunning), node("a"), node("b")},
			tmpl:    jobPod("data", "logs"),
			refusal: []string{"one node", "node a", "node b"}},
		{name: "two RWO claims on one node: pinned",
			objs: []runtime.Object{pvc("data", rwo), pvc("logs", rwo), appPod("app-0", "b", "data", corev1.PodRunning),
				appPod("log-0", "b", "logs", corev1.PodRunning), node("b")},
			tmpl: jobPod("data", "logs"), node: "b"},
		{name: "node cordoned: refused, naming it",
			objs: []runtime.Object{pvc("data", rwo), appPod("app-0", "b", "data", corev1.PodRunning),
				node("b", func(n *corev1.Node) { n.Spec.Unschedulable = true })},
			tmpl:    jobPod("data"),
			refusal: []string{"node b is cordoned", "pod app-0"}},
		{name: "node NotReady: refused, naming it",
			objs: []runtime.Object{pvc("data", rwo), appPod("app-0", "b", "data", corev1.PodRunning),
				node("b", func(n *corev1.Node) {
					n.Status.Conditions[0] = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "NodeStatusUnknown"}
				})},
			tmpl:    jobPod("data"),
			refusal: []string{"node b is NotReady", "Ready=Unknown, NodeStatusUnknown"}},
		{name: "node gone: refused",
			objs:    []runtime.Object{pvc("data", rwo), appPod("app-0", "b", "data", corev1.PodRunning)},
			tmpl:    jobPod("data"),
			refusal: []string{"node b does not exist"}},
		{name: "untolerated taint: refused",
			objs: []runtime.Object{pvc("data", rwo), appPod("app-0", "b", "data", corev1.PodRunning),
				node("b", func(n *corev1.Node) {
					n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}
				})},
			tmpl:    jobPod("data"),
			refusal: []string{"node b has taint dedicated=db:NoSchedule", "tolerations"}},
		{name: "tolerated taint and a PreferNoSchedule one: pinned",
			objs: []runtime.Object{pvc("data", rwo), appPod("app-0", "b", "data", corev1.PodRunning),
				node("b", func(n *corev1.Node) {
					n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule},
						{Key: "soft", Effect: corev1.TaintEffectPreferNoSchedule}}
				})},
			tmpl: jobPod("data"),
			pod: func(s *corev1.PodSpec) {
				s.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "db", Effect: corev1.TaintEffectNoSchedule}}
			},
			node: "b"},
		{name: "node back Ready, its lifecycle taints not yet removed: pinned",
			objs: []runtime.Object{pvc("data", rwo), appPod("app-0", "b", "data", corev1.PodRunning),
				node("b", func(n *corev1.Node) {
					n.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute},
						{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule}, {Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute}}
				})},
			tmpl: jobPod("data"), node: "b"},
		{name: "the Job's own pod is not a user (a retried start): RWOP not refused",
			objs: []runtime.Object{pvc("data", rwop), func() *corev1.Pod {
				p := appPod("stow-backup-s-x1", "b", "data", corev1.PodRunning)
				p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "stow-backup-s", Controller: func() *bool { b := true; return &b }()}}
				return p
			}(), node("b")},
			tmpl: jobPod("data")},
		{name: "user nodeName elsewhere: conflict",
			objs:    []runtime.Object{pvc("data", rwo), appPod("app-0", "b", "data", corev1.PodRunning), node("a"), node("b")},
			tmpl:    jobPod("data"),
			pod:     func(s *corev1.PodSpec) { s.NodeName = "a" },
			refusal: []string{"nodeName is a", "node b"}},
		{name: "user nodeName on the node: pinned",
			objs: []runtime.Object{pvc("data", rwo), appPod("app-0", "b", "data", corev1.PodRunning), node("b")},
			tmpl: jobPod("data"),
			pod:  func(s *corev1.PodSpec) { s.NodeName = "b" },
			node: "b"},
		{name: "user nodeSelector excludes the node: conflict",
			objs:    []runtime.Object{pvc("data", rwo), appPod("app-0", "b", "data", corev1.PodRunning), node("b")},
			tmpl:    jobPod("data"),
			pod:     func(s *corev1.PodSpec) { s.NodeSelector = map[string]string{"kubernetes.io/hostname": "a"} },
			refusal: []string{"node b does not match", "nodeSelector"}},
		{name: "user affinity with two terms: each term carries the pin",
			objs: []runtime.Object{pvc("data", rwo), appPod("app-0", "b", "data", corev1.PodRunning), node("b")},
			tmpl: jobPod("data"),
			pod: func(s *corev1.PodSpec) {
				s.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{
						{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}}},
						{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{"b"}}}},
					}}}}
			},
			node: "b"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kube := k8sfake.NewSimpleClientset(tc.objs...)
			tmpl := tc.tmpl.DeepCopy()
			if tc.pod != nil {
				tc.pod(&tmpl.Spec)
			}
			before := tmpl.DeepCopy()
			pin, err := Apply(context.Background(), kube, ns, "stow-backup-s", tmpl)
			if len(tc.refusal) > 0 {
				if !IsRefusal(err) {
					t.Fatalf("err = %v, want a refusal", err)
				}
				for _, sub := range tc.refusal {
					if !strings.Contains(err.Error(), sub) {
						t.Errorf("refusal %q does not contain %q", err, sub)
					}
				}
				if pinnedTo(t, &tmpl.Spec) != nil && len(pinnedTo(t, &tmpl.Spec)) != len(pinnedTo(t, &before.Spec)) {
					t.Errorf("a refused pod was changed: %+v", tmpl.Spec.Affinity)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if pin.Node != tc.node {
				t.Fatalf("pinned to %q, want %q (%s)", pin.Node, tc.node, pin.Why)
			}
			got := pinnedTo(t, &tmpl.Spec)
			if tc.node == "" {
				if got != nil {
					t.Fatalf("not pinned, but the pod has node affinity %v", got)
				}
				if pin.Suffix() != "" {
					t.Fatalf("suffix %q without a pin", pin.Suffix())
				}
				return
			}
			terms := 1
			if before.Spec.Affinity != nil {
				terms = len(before.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms)
			}
			if len(got) != terms {
				t.Fatalf("pinned terms %v, want %d terms naming %s", got, terms, tc.node)
			}
			for _, g := range got {
				if g != tc.node {
					t.Fatalf("pinned terms %v, want %s", got, tc.node)
				}
			}
			if !strings.Contains(pin.Suffix(), "on node "+tc.node) || !strings.Contains(pin.Suffix(), "ReadWriteOnce") {
				t.Fatalf("suffix %q", pin.Suffix())
			}
			if before.Spec.Affinity != nil && len(before.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchFields) != 0 {
				t.Fatal("the caller's affinity was modified in place")
			}
		})
	}
}

// An error reading the API is not a refusal: the session is retried, not failed.
func TestReadErrorsAreRetried(t *testing.T) {
	kube := k8sfake.NewSimpleClientset(pvc("data", corev1.ReadWriteOnce))
	kube.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("apiserver unavailable")
	})
	_, err := Apply(context.Background(), kube, ns, "stow-backup-s", jobPod("data"))
	if err == nil || IsRefusal(err) {
		t.Fatalf("err = %v, want a plain error", err)
	}
}

// Pods are listed in the Job's namespace only, and only when a
// claim can be mounted on one node: no cluster-wide read.
func TestListsOnlyTheNamespaceInPages(t *testing.T) {
	kube := k8sfake.NewSimpleClientset(pvc("data", corev1.ReadWriteOnce), pvc("shared", corev1.ReadWriteMany),
		appPod("app-0", "b", "data", corev1.PodRunning), node("b"))
	if _, err := Apply(context.Background(), kube, ns, "stow-backup-s", jobPod("shared")); err != nil {
		t.Fatal(err)
	}
	for _, a := range kube.Actions() {
		if a.GetVerb() == "list" {
			t.Fatalf("an RWX claim listed pods: %v", a)
		}
	}
	if _, err := Apply(context.Background(), kube, ns, "stow-backup-s", jobPod("data")); err != nil {
		t.Fatal(err)
	}
	lists := 0
	for _, a := range kube.Actions() {
		if l, ok := a.(k8stesting.ListAction); ok {
			lists++
			if l.GetNamespace() != ns {
				t.Errorf("listed %s in namespace %q", l.GetResource().Resource, l.GetNamespace())
			}
		}
	}
	if lists != 1 {
		t.Fatalf("%d lists, want 1", lists)
	}
}

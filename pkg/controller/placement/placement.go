// Package placement decides where a Job pod must run because of the volumes
// it mounts. A ReadWriteOnce volume in use by a pod is attached to that pod's
// node; a second pod elsewhere waits in Multi-Attach (cloud disks) or sees
// another directory (local volumes) until the session's Pending threshold
// fails it. So a backup or restore pod that mounts such a volume is pinned to
// the node of the pod that uses it, and when that node cannot take it
// (cordoned, NotReady, a taint the pod does not tolerate), or the user's own
// nodeName / node affinity excludes it, the session fails at once with a
// message that names the node, instead of waiting.
//
// ReadWriteMany and ReadOnlyMany volumes are not pinned. A ReadWriteOncePod
// volume in use cannot be mounted by a second pod anywhere: that is a clear
// failure too. A volume no running pod uses is not pinned: the scheduler
// follows its PersistentVolume's node affinity, if any.
//
// What it reads, on demand and only when the Job is about to be created: the
// PVCs the pod mounts, the pods of the Job's namespace (listed in pages, not
// cached: the operator keeps no cluster-wide pod cache) and the one node.
package placement

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"
)

// pageSize bounds how many pods one list call returns (and the operator
// holds at once) while looking for the users of a volume.
const pageSize = 250

// Pin is what Decide concluded.
type Pin struct {
	// Node is the node the pod must run on; "" when no volume pins it.
	Node string
	// Why says which volume pins it there, for events and messages.
	Why string
}

// Suffix is " on node N (why)" for messages, or "" when nothing pins the pod.
func (p Pin) Suffix() string {
	if p.Node == "" {
		return ""
	}
	return fmt.Sprintf(" on node %s (%s)", p.Node, p.Why)
}

// Refusal is a placement that cannot work; its message names the volume,
// the pod that uses it and the node. The session fails with it.
type Refusal struct{ Message string }

func (r *Refusal) Error() string { return r.Message }

// IsRefusal reports whether err is a Refusal (a permanent failure of the
// session), as opposed to an error reading the API (retried).
func IsRefusal(err error) bool {
	_, ok := err.(*Refusal)
	return ok
}

func refuse(format string, args ...any) error {
	return &Refusal{Message: fmt.Sprintf(format, args...)}
}

// user is a pod that uses a claim.
type user struct{ pod, node string }

// Apply decides where the pod of tmpl, of Job job (to be created in
// namespace), must run and, when a volume pins it, adds the node to the
// pod's required node affinity. It returns a *Refusal when the pod cannot
// run where it must, and other errors when the API could not be read.
func Apply(ctx context.Context, kube kubernetes.Interface, namespace, job string, tmpl *corev1.PodTemplateSpec) (Pin, error) {
	pin, err := Decide(ctx, kube, namespace, job, &tmpl.Spec)
	if err != nil || pin.Node == "" {
		return pin, err
	}
	pinTo(&tmpl.Spec, pin.Node)
	return pin, nil
}

// Decide returns the node the pod spec of Job job must run on (see the
// package comment) without changing the spec. The pods of job itself do not
// count as users of its volumes: a sync that starts a Job that exists
// already (its status write was lost) must not find the Job in its own way.
func Decide(ctx context.Context, kube kubernetes.Interface, namespace, job string, spec *corev1.PodSpec) (Pin, error) {
	var users map[string][]user // claim -> pods using it, read once when needed
	var pin Pin
	for _, v := range spec.Volumes {
		if v.PersistentVolumeClaim == nil {
			continue
		}
		claim := v.PersistentVolumeClaim.ClaimName
		pvc, err := kube.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, claim, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue // the session's own checks report a missing PVC
		}
		if err != nil {
			return Pin{}, fmt.Errorf("read PVC %s/%s: %w", namespace, claim, err)
		}
		mode := exclusiveMode(pvc)
		if mode == "" {
			continue
		}
		if users == nil {
			if users, err = claimUsers(ctx, kube, namespace, job); err != nil {
				return Pin{}, err
			}
		}
		us := users[claim]
		if len(us) == 0 {
			continue
		}
		if mode == corev1.ReadWriteOncePod {
			return Pin{}, refuse("PVC %s/%s is ReadWriteOncePod and in use by pod %s on node %s: no second pod can mount it while that pod runs",
				namespace, claim, us[0].pod, us[0].node)
		}
		nodes := map[string]bool{}
		for _, u := range us {
			nodes[u.node] = true
		}
		if len(nodes) > 1 {
			return Pin{}, refuse("PVC %s/%s is ReadWriteOnce but in use on %d nodes (%s): cannot tell where to mount it",
				namespace, claim, len(nodes), describe(us))
		}
		why := fmt.Sprintf("PVC %s/%s is ReadWriteOnce and in use by pod %s on node %s", namespace, claim, us[0].pod, us[0].node)
		if pin.Node != "" && pin.Node != us[0].node {
			return Pin{}, refuse("the Job pod cannot run on one node: %s, but %s", why, pin.Why)
		}
		pin = Pin{Node: us[0].node, Why: why}
	}
	if pin.Node == "" {
		return pin, nil
	}
	node, err := kube.CoreV1().Nodes().Get(ctx, pin.Node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Pin{}, refuse("%s, and node %s does not exist", pin.Why, pin.Node)
	}
	if err != nil {
		return Pin{}, fmt.Errorf("read node %s: %w", pin.Node, err)
	}
	if why := unfit(node, spec); why != "" {
		return Pin{}, refuse("%s, but %s", pin.Why, why)
	}
	return pin, nil
}

// exclusiveMode returns ReadWriteOnce or ReadWriteOncePod when the claim can
// be mounted on one node (pod) only, else "". The bound volume's modes
// (status) win over the requested ones (spec).
func exclusiveMode(pvc *corev1.PersistentVolumeClaim) corev1.PersistentVolumeAccessMode {
	modes := pvc.Status.AccessModes
	if len(modes) == 0 {
		modes = pvc.Spec.AccessModes
	}
	var out corev1.PersistentVolumeAccessMode
	for _, m := range modes {
		switch m {
		case corev1.ReadWriteMany, corev1.ReadOnlyMany:
			return "" // many nodes may mount it
		case corev1.ReadWriteOncePod:
			out = m
		case corev1.ReadWriteOnce:
			if out == "" {
				out = m
			}
		}
	}
	return out
}

// claimUsers lists the pods of namespace that are scheduled and not
// finished, in pages, and keeps only which claim each one mounts; the pods
// of Job self are left out.
func claimUsers(ctx context.Context, kube kubernetes.Interface, namespace, self string) (map[string][]user, error) {
	out := map[string][]user{}
	opts := metav1.ListOptions{Limit: pageSize,
		FieldSelector: "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"}
	for {
		list, err := kube.CoreV1().Pods(namespace).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list the pods of namespace %s (to find who uses its ReadWriteOnce volumes): %w", namespace, err)
		}
		for i := range list.Items {
			p := &list.Items[i]
			if p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				continue // field selectors are not applied by every client (fakes)
			}
			if ownedByJob(p, self) {
				continue
			}
			for _, v := range p.Spec.Volumes {
				if c := v.PersistentVolumeClaim; c != nil {
					out[c.ClaimName] = append(out[c.ClaimName], user{pod: p.Name, node: p.Spec.NodeName})
				}
			}
		}
		if list.Continue == "" {
			break
		}
		opts.Continue = list.Continue
	}
	for _, us := range out {
		sort.Slice(us, func(i, j int) bool { return us[i].pod < us[j].pod })
	}
	return out, nil
}

// ownedByJob: pod is controlled by Job name.
func ownedByJob(pod *corev1.Pod, name string) bool {
	c := metav1.GetControllerOf(pod)
	return c != nil && c.Kind == "Job" && c.Name == name
}

func describe(us []user) string {
	parts := make([]string, 0, len(us))
	for _, u := range us {
		parts = append(parts, fmt.Sprintf("pod %s on node %s", u.pod, u.node))
	}
	return strings.Join(parts, ", ")
}

// unfit says why a pod with spec cannot run on node, or "".
func unfit(node *corev1.Node, spec *corev1.PodSpec) string {
	if spec.NodeName != "" && spec.NodeName != node.Name {
		return fmt.Sprintf("runtimeSettings.pod.nodeName is %s", spec.NodeName)
	}
	pod := &corev1.Pod{Spec: *spec}
	if ok, err := nodeaffinity.GetRequiredNodeAffinity(pod).Match(node); err != nil {
		return fmt.Sprintf("runtimeSettings.pod node affinity is invalid: %v", err)
	} else if !ok {
		return fmt.Sprintf("node %s does not match runtimeSettings.pod.nodeSelector / required node affinity", node.Name)
	}
	if node.Spec.Unschedulable {
		return fmt.Sprintf("node %s is cordoned (unschedulable)", node.Name)
	}
	if ready := readyCondition(node); ready == nil || ready.Status != corev1.ConditionTrue {
		why := "no Ready condition"
		if ready != nil {
			why = fmt.Sprintf("Ready=%s", ready.Status)
			if ready.Reason != "" {
				why += ", " + ready.Reason
			}
		}
		return fmt.Sprintf("node %s is NotReady (%s)", node.Name, why)
	}
	for i := range node.Spec.Taints {
		t := &node.Spec.Taints[i]
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
			// The node is Ready (above): the node lifecycle controller
			// removes these taints within seconds of a node's return.
			// Judged by them, the first backup after a node came back
			// would fail although its pod is about to schedule.
			continue
		}
		if !tolerated(spec.Tolerations, t) {
			return fmt.Sprintf("node %s has taint %s that the Job pod does not tolerate (add a toleration in runtimeSettings.pod.tolerations)", node.Name, t.ToString())
		}
	}
	return ""
}

func tolerated(tols []corev1.Toleration, t *corev1.Taint) bool {
	for i := range tols {
		// Gt/Lt tolerations are alpha (off by default): compare as the scheduler does by default.
		if tols[i].ToleratesTaint(klog.Background(), t, false) {
			return true
		}
	}
	return false
}

func readyCondition(node *corev1.Node) *corev1.NodeCondition {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == corev1.NodeReady {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

// pinTo adds "metadata.name In [node]" to every required node selector term
// of spec (terms are ORed, so each must carry it), or makes the one term.
// The scheduler still checks resources, taints and the user's own rules;
// nodeName would skip all of that.
func pinTo(spec *corev1.PodSpec, node string) {
	req := corev1.NodeSelectorRequirement{Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}
	if spec.Affinity == nil {
		spec.Affinity = &corev1.Affinity{}
	} else {
		spec.Affinity = spec.Affinity.DeepCopy()
	}
	if spec.Affinity.NodeAffinity == nil {
		spec.Affinity.NodeAffinity = &corev1.NodeAffinity{}
	}
	na := spec.Affinity.NodeAffinity
	if na.RequiredDuringSchedulingIgnoredDuringExecution == nil || len(na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms) == 0 {
		na.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{}}}
	}
	terms := na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	for i := range terms {
		terms[i].MatchFields = append(terms[i].MatchFields, req)
	}
}

// ReasonNodeLost is the condition reason of a session whose Job pod's node
// stopped being Ready for longer than the grace period.
const ReasonNodeLost = "NodeLost"

// DefaultNodeLostGrace is how long a Job pod's node may be NotReady (after
// the node controller noticed: --node-monitor-grace-period, 50s by
// default) before the session fails: a kubelet restart or a short network
// break must not fail a long backup, a dead node must not hold the
// Repository until the pod is evicted (300s more by default) or forever.
const DefaultNodeLostGrace = time.Minute

// NodeCheckInterval is how often the node of a running, not Ready Job pod
// is read again (one get per running session per interval).
const NodeCheckInterval = 30 * time.Second

// NodeLost looks at the running pods of the Job jobUID among pods: when
// the node of one has not been Ready for grace, it returns a message that
// names the node and the pod; otherwise when to look again (0: no need).
// It reads the node only for a pod that is not Ready: the node controller
// marks the pods of a NotReady node so, which is an event for a Ready pod.
func NodeLost(ctx context.Context, kube kubernetes.Interface, jobUID types.UID, pods []*corev1.Pod, now time.Time, grace time.Duration) (msg string, recheck time.Duration, err error) {
	for _, p := range pods {
		if p.Spec.NodeName == "" || p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed ||
			!controlledBy(p, jobUID) || podReady(p) {
			continue
		}
		node, err := kube.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return fmt.Sprintf("node %s of pod %s was deleted while the pod ran", p.Spec.NodeName, p.Name), 0, nil
		}
		if err != nil {
			return "", 0, fmt.Errorf("read node %s: %w", p.Spec.NodeName, err)
		}
		ready := readyCondition(node)
		if ready == nil || ready.Status == corev1.ConditionTrue {
			// A pod that is not Ready (a running step is an init container)
			// gets no event when its node goes: look again.
			recheck = minPositive(recheck, NodeCheckInterval)
			continue
		}
		since := ready.LastTransitionTime.Time
		if left := since.Add(grace).Sub(now); left > 0 {
			recheck = minPositive(recheck, left)
			continue
		}
		why := string(ready.Status)
		if ready.Reason != "" {
			why += ", " + ready.Reason
		}
		return fmt.Sprintf("node %s of pod %s is NotReady (Ready=%s) since %s (more than %s): the node is lost, the Job was stopped",
			node.Name, p.Name, why, since.UTC().Format(time.RFC3339), grace), 0, nil
	}
	return "", recheck, nil
}

func minPositive(a, b time.Duration) time.Duration {
	if a <= 0 || b < a {
		return b
	}
	return a
}

func controlledBy(p *corev1.Pod, uid types.UID) bool {
	ref := metav1.GetControllerOf(p)
	return ref != nil && ref.UID == uid
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

package backupsession

import (
	"context"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/names"
)

// mountTarget makes the fixture's builder mount the target PVC, as
// resolve.BackupJob does.
func (f *fixture) mountTarget() {
	build := f.c.cfg.BuildJob
	f.c.cfg.BuildJob = func(bc *v1beta1.BackupConfiguration, s *v1beta1.BackupSession, repo *v1beta1.Repository, task *v1beta1.Task, fns map[string]*v1beta1.Function) (*batchv1.Job, error) {
		job, err := build(bc, s, repo, task, fns)
		if err == nil {
			job.Spec.Template.Spec.Volumes = append(job.Spec.Template.Spec.Volumes, corev1.Volume{Name: v1beta1.TargetVolumeName,
				VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: bc.Spec.Target.Ref.Name}}})
		}
		return job, err
	}
}

func placementObjects(mutate ...func(*corev1.Node)) (*corev1.PersistentVolumeClaim, *corev1.Pod, *corev1.Node) {
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}}}
	app := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "app-0", Namespace: ns},
		Spec: corev1.PodSpec{NodeName: "node-b", Volumes: []corev1.Volume{{Name: "data",
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b"},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
	for _, m := range mutate {
		m(node)
	}
	return pvc, app, node
}

// An RWO target in use: the backup Job's pod is pinned to the app's node,
// and the session says so.
func TestRWOTargetPinsTheJob(t *testing.T) {
	pvc, app, node := placementObjects()
	f := newFixture(t, readyBC("bc", "data"), repository("repo"), newSession("bc-1", "bc", t0, ""), pvc, app, node)
	f.mountTarget()
	f.sync("bc-1")

	job := f.job(names.BackupJob("bc-1"))
	if job == nil {
		t.Fatalf("no Job; status %+v", f.session("bc-1").Status)
	}
	a := job.Spec.Template.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil ||
		a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchFields[0].Values[0] != "node-b" {
		t.Fatalf("Job pod not pinned to node-b: %+v", a)
	}
	c := cond(t, f.session("bc-1").Status.Targets[0].Conditions, v1beta1.BackupExecutorEnsured, v1beta1.ConditionTrue)
	contains(t, "condition message", c.Message, "on node node-b (PVC app/data is ReadWriteOnce and in use by pod app-0")
	if ev := f.events(); !hasEvent(ev, "on node node-b") {
		t.Fatalf("events %v do not name the node", ev)
	}
}

// The node of the app is cordoned: no Job, the session fails at once with a
// message naming the node, and the Repository is free for the next session.
func TestRWOTargetOnCordonedNodeFails(t *testing.T) {
	pvc, app, node := placementObjects(func(n *corev1.Node) { n.Spec.Unschedulable = true })
	f := newFixture(t, readyBC("bc", "data"), readyBC("other", "logs"), repository("repo"), newSession("bc-1", "bc", t0, ""),
		newSession("other-1", "other", t0, ""), pvc, app, node)
	f.mountTarget()
	f.sync("bc-1")

	if f.job(names.BackupJob("bc-1")) != nil {
		t.Fatal("a Job was created for a node that cannot take it")
	}
	s := f.session("bc-1")
	if s.Status.Phase != v1beta1.BackupSessionFailed {
		t.Fatalf("phase = %s, want Failed; status %+v", s.Status.Phase, s.Status)
	}
	c := cond(t, s.Status.Targets[0].Conditions, v1beta1.BackupExecutorEnsured, v1beta1.ConditionFalse)
	contains(t, "condition message", c.Message, "node node-b is cordoned")
	if ev := f.events(); !hasEvent(ev, "node node-b is cordoned") {
		t.Fatalf("events %v do not say why", ev)
	}
	// The gate was released: a session of another target starts.
	f.sync("other-1")
	if f.job(names.BackupJob("other-1")) == nil {
		t.Fatalf("the next session did not start: %+v", f.session("other-1").Status)
	}
	if strings.Contains(f.session("other-1").Status.Targets[0].Conditions[0].Message, "node") {
		t.Fatalf("unrelated session pinned: %+v", f.session("other-1").Status)
	}
}

// The node of a running backup pod is lost: the session fails once the node
// has been NotReady for the grace period, naming the node, and its Job is
// stopped; before that it looks again when the grace period ends.
func TestLostNodeFailsTheSession(t *testing.T) {
	f := newFixture(t, readyBC("bc", "data"), repository("repo"), newSession("bc-1", "bc", t0, ""),
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "NodeStatusUnknown", LastTransitionTime: metav1.NewTime(t0.Add(30 * time.Second))}}}})
	f.sync("bc-1")
	jobName := names.BackupJob("bc-1")
	f.clock.SetTime(t0.Add(time.Minute))
	f.setPod("bc-1", corev1.PodRunning, t0, []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}},
		corev1.ContainerStatus{Name: "pvc-backup-0", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}})
	pod, _ := f.kube.CoreV1().Pods(ns).Get(context.Background(), jobName+"-abcde", metav1.GetOptions{})
	pod.Spec.NodeName = "node-b"
	if _, err := f.kube.CoreV1().Pods(ns).Update(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.resync()

	f.sync("bc-1")
	if s := f.session("bc-1"); s.Status.Phase != v1beta1.BackupSessionRunning {
		t.Fatalf("failed within the grace period: %+v", s.Status)
	}
	if d := f.requeued[ns+"/bc-1"]; d != 30*time.Second {
		t.Fatalf("requeued after %s, want 30s (the end of the grace period)", d)
	}

	f.clock.SetTime(t0.Add(2 * time.Minute))
	f.sync("bc-1")
	s := f.session("bc-1")
	if s.Status.Phase != v1beta1.BackupSessionFailed {
		t.Fatalf("phase = %s, want Failed; status %+v", s.Status.Phase, s.Status)
	}
	c := cond(t, s.Status.Targets[0].Conditions, v1beta1.BackupDisrupted, v1beta1.ConditionTrue)
	if c.Reason != "NodeLost" {
		t.Fatalf("reason %s, want NodeLost", c.Reason)
	}
	contains(t, "reason", s.Status.Reason, "node node-b of pod "+jobName+"-abcde is NotReady")
	if j := f.job(jobName); j != nil && j.DeletionTimestamp == nil {
		t.Fatal("the Job on the lost node was not stopped")
	}
}

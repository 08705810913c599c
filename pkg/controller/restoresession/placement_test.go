package restoresession

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/jobenv"
	"github.com/stowhq/stow/pkg/names"
)

// placementFixture: PVC data (ReadWriteOnce) is in use by pod app-0 on
// node-b, and the restore Job mounts it.
func placementFixture(t *testing.T, mutate func(*corev1.Node)) *fixture {
	claim := pvc("data")
	claim.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	app := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "app-0", Namespace: ns},
		Spec: corev1.PodSpec{NodeName: "node-b", Volumes: []corev1.Volume{{Name: "data",
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b"},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
	if mutate != nil {
		mutate(node)
	}
	f := newFixture(t, repository("repo"), secret(), claim, app, node, newRestore("rs"))
	build := f.c.cfg.BuildJobs
	f.c.cfg.BuildJobs = func(rs *v1beta1.RestoreSession, repo *v1beta1.Repository, task *v1beta1.Task, fns map[string]*v1beta1.Function, r []jobenv.ResolvedSnapshot) ([]*batchv1.Job, []*corev1.PersistentVolumeClaim, error) {
		jobs, pvcs, err := build(rs, repo, task, fns, r)
		for _, j := range jobs {
			j.Spec.Template.Spec.Volumes = append(j.Spec.Template.Spec.Volumes, corev1.Volume{Name: v1beta1.TargetVolumeName,
				VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: rs.Spec.Target.Ref.Name}}})
		}
		return jobs, pvcs, err
	}
	return f
}

func TestRWOTargetPinsTheRestoreJob(t *testing.T) {
	f := placementFixture(t, nil)
	f.sync("rs")
	f.sync("rs")
	job := f.job(names.RestoreJob("rs", 0))
	if job == nil {
		t.Fatalf("no Job; status %+v", f.restore("rs").Status)
	}
	a := job.Spec.Template.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchFields[0].Values[0] != "node-b" {
		t.Fatalf("restore pod not pinned to node-b: %+v", a)
	}
	if ev := f.events(); !hasEvent(ev, "on node node-b (PVC app/data is ReadWriteOnce and in use by pod app-0") {
		t.Fatalf("events %v do not name the node", ev)
	}
}

func TestRWOTargetOnNotReadyNodeFailsTheRestore(t *testing.T) {
	f := placementFixture(t, func(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionUnknown })
	f.sync("rs")
	f.sync("rs")
	if f.job(names.RestoreJob("rs", 0)) != nil {
		t.Fatal("a Job was created for a node that cannot take it")
	}
	got := f.restore("rs")
	c := cond(t, got.Status.Conditions, v1beta1.RestoreExecutorEnsured, v1beta1.ConditionFalse)
	contains(t, "condition message", c.Message, "cannot place the restore Job")
	contains(t, "condition message", c.Message, "node node-b is NotReady")
	if got.Status.Phase != v1beta1.RestoreFailed {
		t.Fatalf("phase = %s, want Failed", got.Status.Phase)
	}
	if v1beta1.GetCondition(got.Status.Conditions, v1beta1.ExecutorWaiting) != nil {
		t.Fatal("a refused restore still says it is waiting")
	}
}

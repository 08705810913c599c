package restoresession

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/claim"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/names"
)

// A restore with an interimVolumeTemplate gets its own PVC before its Job
// and loses it when it ends; a template without a size fails the restore.
func TestRestoreInterimVolume(t *testing.T) {
	interimPVC := func(f *fixture) *corev1.PersistentVolumeClaim {
		p, err := f.kube.CoreV1().PersistentVolumeClaims(ns).Get(context.Background(), "scratch-rs", metav1.GetOptions{})
		if err != nil {
			return nil
		}
		return p
	}
	withTemplate := func(storage string) func(*v1beta1.RestoreSession) {
		return func(rs *v1beta1.RestoreSession) {
			tpl := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "scratch"}}
			if storage != "" {
				tpl.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(storage)}
			}
			rs.Spec.InterimVolumeTemplate = tpl
		}
	}

	f := newFixture(t, repository("repo"), secret(), pvc("data"), newRestore("rs", withTemplate("1Gi")))
	f.sync("rs")
	f.sync("rs")
	got := f.restore("rs")
	p := interimPVC(f)
	if p == nil || !internal.IsControlledBy(p, got.UID) || p.Labels[v1beta1.LabelComponent] != v1beta1.ComponentInterim {
		t.Fatalf("interim PVC = %+v", p)
	}
	job := f.job(names.RestoreJob("rs", 0))
	if job == nil {
		t.Fatal("restore Job not created")
	}
	f.clock.Step(30 * time.Second)
	f.setPod(job.Name, corev1.PodSucceeded, t0, nil, restoreOK())
	f.sync("rs")
	if got := f.restore("rs"); got.Status.Phase != v1beta1.RestoreSucceeded {
		t.Fatalf("phase = %s (%s)", got.Status.Phase, got.Status.Reason)
	}
	f.sync("rs")
	if interimPVC(f) != nil {
		t.Fatal("interim PVC kept after the restore ended")
	}
	if !hasEvent(f.events(), claim.EventInterimDeleted) {
		t.Error("no InterimVolumeDeleted event")
	}

	f = newFixture(t, repository("repo"), secret(), pvc("data"), newRestore("rs", withTemplate("")))
	f.sync("rs")
	f.sync("rs")
	got = f.restore("rs")
	if got.Status.Phase != v1beta1.RestoreFailed || f.job(names.RestoreJob("rs", 0)) != nil || interimPVC(f) != nil {
		t.Fatalf("template without a size: phase %s, reason %q", got.Status.Phase, got.Status.Reason)
	}
	c := cond(t, got.Status.Conditions, v1beta1.RestoreExecutorEnsured, v1beta1.ConditionFalse)
	contains(t, "condition", c.Message, "spec.resources.requests.storage")
}

package backupsession

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/claim"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/names"
)

func withInterim(storage string) func(*v1beta1.BackupConfiguration) {
	return func(bc *v1beta1.BackupConfiguration) {
		tpl := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "db"}}}
		if storage != "" {
			tpl.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(storage)}
		}
		bc.Spec.InterimVolumeTemplate = tpl
	}
}

func (f *fixture) pvc(name string) *corev1.PersistentVolumeClaim {
	p, err := f.kube.CoreV1().PersistentVolumeClaims(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return p
}

// A session with an interimVolumeTemplate gets its own PVC before its Job,
// owned by the session and labelled as Stow's; when the session ends it is
// deleted and the finished Job is handed to the TTL controller, whose pod
// would otherwise keep it.
func TestInterimVolumeLifecycle(t *testing.T) {
	f := newFixture(t, readyBC("bc", "data", withInterim("1Gi")), repository("repo"), newSession("bc-1", "bc", t0, ""))
	f.sync("bc-1")
	s := f.session("bc-1")
	pvc := f.pvc("stow-interim-bc-1")
	if pvc == nil {
		t.Fatal("interim PVC not created")
	}
	if !internal.IsControlledBy(pvc, s.UID) || pvc.Labels[v1beta1.LabelManagedBy] != v1beta1.ManagedByStow ||
		pvc.Labels[v1beta1.LabelComponent] != v1beta1.ComponentInterim || pvc.Labels["team"] != "db" {
		t.Fatalf("interim PVC metadata = %+v", pvc.ObjectMeta)
	}
	if f.job(names.BackupJob("bc-1")) == nil {
		t.Fatal("backup Job not created")
	}
	// Synced again (a retry of the same step): the same PVC is the session's.
	f.sync("bc-1")
	if s := f.session("bc-1"); s.Status.Phase != v1beta1.BackupSessionRunning {
		t.Fatalf("phase after a second sync = %s (%s)", s.Status.Phase, s.Status.Reason)
	}

	f.clock.Step(time.Minute)
	f.setPod("bc-1", corev1.PodSucceeded, t0, nil, successStatuses()...)
	f.sync("bc-1")
	if s := f.session("bc-1"); s.Status.Phase != v1beta1.BackupSessionSucceeded {
		t.Fatalf("phase = %s (%s)", s.Status.Phase, s.Status.Reason)
	}
	f.sync("bc-1") // the final session's sync ends the interim volume
	if f.pvc("stow-interim-bc-1") != nil {
		t.Fatal("interim PVC kept after the session ended")
	}
	if j := f.job(names.BackupJob("bc-1")); j == nil || j.Spec.TTLSecondsAfterFinished == nil || *j.Spec.TTLSecondsAfterFinished != 0 {
		t.Fatalf("finished Job not released: %+v", j)
	}
	if !hasEvent(f.events(), claim.EventInterimDeleted) {
		t.Error("no InterimVolumeDeleted event")
	}
}

// A template without a size, or a PVC of that name that is not the
// session's, fails the session with the cause; no Job runs, and a PVC that
// is not the session's is never deleted.
func TestInterimVolumeRefused(t *testing.T) {
	t.Run("no size", func(t *testing.T) {
		f := newFixture(t, readyBC("bc", "data", withInterim("")), repository("repo"), newSession("bc-1", "bc", t0, ""))
		f.sync("bc-1")
		s := f.session("bc-1")
		if s.Status.Phase != v1beta1.BackupSessionFailed {
			t.Fatalf("phase = %s", s.Status.Phase)
		}
		c := cond(t, s.Status.Targets[0].Conditions, v1beta1.BackupExecutorEnsured, v1beta1.ConditionFalse)
		contains(t, "condition", c.Message, "spec.resources.requests.storage")
		contains(t, "reason", s.Status.Reason, "spec.resources.requests.storage")
		if f.job(names.BackupJob("bc-1")) != nil || f.pvc("stow-interim-bc-1") != nil {
			t.Fatal("a Job or PVC was created from a template without a size")
		}
		if !hasEvent(f.events(), "Warning "+EventExecutorFailed) {
			t.Error("no Warning event")
		}
	})
	t.Run("taken", func(t *testing.T) {
		theirs := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "stow-interim-bc-1", Namespace: ns, UID: types.UID("theirs")}}
		f := newFixture(t, readyBC("bc", "data", withInterim("1Gi")), repository("repo"), newSession("bc-1", "bc", t0, ""), theirs)
		f.sync("bc-1")
		s := f.session("bc-1")
		if s.Status.Phase != v1beta1.BackupSessionFailed {
			t.Fatalf("phase = %s", s.Status.Phase)
		}
		contains(t, "reason", s.Status.Reason, "not created by Stow for this session")
		if f.job(names.BackupJob("bc-1")) != nil {
			t.Fatal("Job created with someone else's PVC as interim volume")
		}
		f.sync("bc-1")
		if f.pvc("stow-interim-bc-1") == nil {
			t.Fatal("someone else's PVC was deleted")
		}
	})
}

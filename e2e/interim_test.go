//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/interim"
	"github.com/stowhq/stow/pkg/names"
)

// A backup with an interimVolumeTemplate: the session's PVC exists while
// its Job runs and the Job mounts it at the interim path; once the session
// ended, the PVC is gone. A restore with one ends with its PVC deleted too.
// A template without a size fails the session saying so, and creates
// nothing.
func TestInterimVolumeBackup(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	ns := namespace(t)
	c := context.Background()
	pvc(t, ns, "data", corev1.ReadWriteMany)
	runFixture(t, ns, "data", "write", "/data", "1", "10")
	createRepository(t, ns, "s3")
	bc := backupConfig(ns, "bc", "data", "0 0 1 1 *", 3)
	bc.Spec.InterimVolumeTemplate = &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "scratch", Labels: map[string]string{"team": "e2e"}},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("64Mi")}}},
	}
	createBC(t, bc)
	waitBCReady(t, ns, "bc")

	got, err := e.stow.StowV1beta1().BackupConfigurations(ns).Get(c, "bc", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.stow.StowV1beta1().BackupSessions(ns).Create(c, &v1beta1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "bc-manual-", Namespace: ns, Labels: names.SessionLabels(got)},
		Spec:       v1beta1.BackupSessionSpec{Invoker: v1beta1.BackupInvokerRef{Kind: v1beta1.KindBackupConfiguration, Name: "bc"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	claimName := "scratch-" + s.Name
	// While the session runs: its PVC exists, is the session's, and the
	// Job's pod mounts it.
	waitFor(t, "interim PVC and the Job mounting it", 2*time.Minute, func(c context.Context) (bool, error) {
		p, err := e.kube.CoreV1().PersistentVolumeClaims(ns).Get(c, claimName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		if ctl := metav1.GetControllerOf(p); ctl == nil || ctl.UID != s.UID || p.Labels["team"] != "e2e" ||
			p.Labels[v1beta1.LabelComponent] != v1beta1.ComponentInterim {
			t.Fatalf("interim PVC metadata = %+v", p.ObjectMeta)
		}
		j, err := e.kube.BatchV1().Jobs(ns).Get(c, names.BackupJob(s.Name), metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		mounted := false
		for _, v := range j.Spec.Template.Spec.Volumes {
			if v.Name == interim.VolumeName && v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claimName {
				mounted = true
			}
		}
		if !mounted {
			t.Fatalf("backup Job does not mount %s: %+v", claimName, j.Spec.Template.Spec.Volumes)
		}
		return true, nil
	})
	if s := waitSessionFinal(t, ns, s.Name, 4*time.Minute); s.Status.Phase != v1beta1.BackupSessionSucceeded {
		t.Fatalf("backup with an interim volume: %s (%s)", s.Status.Phase, s.Status.Reason)
	}
	waitFor(t, "interim PVC deleted after the session", 2*time.Minute, func(c context.Context) (bool, error) {
		_, err := e.kube.CoreV1().PersistentVolumeClaims(ns).Get(c, claimName, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})

	// A restore with an interim volume: it ends Succeeded, and its PVC was
	// made and deleted (the Event says so) and is gone.
	rs := &v1beta1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "restore", Namespace: ns},
		Spec: v1beta1.RestoreSessionSpec{Repository: v1beta1.ObjectRef{Name: "repo"},
			Target:                &v1beta1.RestoreTarget{Ref: v1beta1.TargetRef{APIVersion: "v1", Kind: "PersistentVolumeClaim", Name: "data"}},
			InterimVolumeTemplate: &corev1.PersistentVolumeClaim{Spec: *bc.Spec.InterimVolumeTemplate.Spec.DeepCopy()}}}
	if _, err := e.stow.StowV1beta1().RestoreSessions(ns).Create(c, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := waitRestore(t, ns, "restore", 4*time.Minute); got.Status.Phase != v1beta1.RestoreSucceeded {
		t.Fatalf("restore with an interim volume: %s (%s)", got.Status.Phase, got.Status.Reason)
	}
	waitFor(t, "the restore's interim PVC deleted", 2*time.Minute, func(c context.Context) (bool, error) {
		_, err := e.kube.CoreV1().PersistentVolumeClaims(ns).Get(c, "stow-interim-restore", metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return false, nil
		}
		evs, err := e.kube.CoreV1().Events(ns).List(c, metav1.ListOptions{FieldSelector: "involvedObject.name=restore"})
		if err != nil {
			return false, err
		}
		for _, ev := range evs.Items {
			if ev.Reason == "InterimVolumeDeleted" && strings.Contains(ev.Message, "stow-interim-restore") {
				return true, nil
			}
		}
		return false, nil
	})

	// A template without a size: the session fails naming the field.
	updateBC(t, ns, "bc", func(bad *v1beta1.BackupConfiguration) {
		bad.Spec.InterimVolumeTemplate.Spec.Resources = corev1.VolumeResourceRequirements{}
	})
	waitBCReady(t, ns, "bc")
	failed := triggerBackup(t, ns, "bc", 2*time.Minute)
	if failed.Status.Phase != v1beta1.BackupSessionFailed || !strings.Contains(failed.Status.Reason, "spec.resources.requests.storage") {
		t.Fatalf("backup with a template without a size: %s (%s)", failed.Status.Phase, failed.Status.Reason)
	}
	if _, err := e.kube.BatchV1().Jobs(ns).Get(c, names.BackupJob(failed.Name), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a Job was created for the refused template: %v", err)
	}
}

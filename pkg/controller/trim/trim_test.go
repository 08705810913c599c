package trim

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/podguard"
)

func fields(t time.Time, sub string) metav1.ManagedFieldsEntry {
	return metav1.ManagedFieldsEntry{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
		Time: &metav1.Time{Time: t}, Subresource: sub, FieldsType: "FieldsV1",
		FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:schedule":{}}}`)}}
}

func TestOwnedKeepsNeitherFieldSetsNorJobTemplate(t *testing.T) {
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "c", Annotations: map[string]string{"stow.dev/spec-hash": "h"},
			ManagedFields: []metav1.ManagedFieldsEntry{fields(time.Now(), "")}},
		Spec: batchv1.CronJobSpec{Schedule: "@daily", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "trigger", Image: "stow"}}}}}}},
	}
	out, err := Owned(cj)
	if err != nil || out != any(cj) {
		t.Fatalf("Owned = %v, %v", out, err)
	}
	if cj.ManagedFields != nil || len(cj.Spec.JobTemplate.Spec.Template.Spec.Containers) != 0 {
		t.Errorf("kept: managedFields %v, job template %+v", cj.ManagedFields, cj.Spec.JobTemplate)
	}
	if cj.Spec.Schedule != "@daily" || cj.Annotations["stow.dev/spec-hash"] != "h" {
		t.Errorf("dropped what the drift check reads: %+v", cj)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{fields(time.Now(), "")}}}
	if _, _ = Owned(sa); sa.ManagedFields != nil {
		t.Errorf("ServiceAccount managedFields kept")
	}
	// Tombstones and other values pass unchanged.
	tomb := cache.DeletedFinalStateUnknown{Key: "a/b"}
	if out, err := Owned(tomb); err != nil || out != any(tomb) {
		t.Errorf("tombstone: %v, %v", out, err)
	}
}

// A thinned BackupConfiguration still tells the pod settings guard when
// the object itself was last written.
func TestStowKeepsWhenABackupConfigurationWasWritten(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	edited, status := created.Add(time.Hour), created.Add(2*time.Hour)
	bc := &v1beta1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.Time{Time: created},
		ManagedFields: []metav1.ManagedFieldsEntry{fields(edited, ""), fields(status, "status")}}}
	before := podguard.LastWrite(bc)
	if _, err := Stow(bc); err != nil {
		t.Fatal(err)
	}
	if got := podguard.LastWrite(bc); !got.Equal(before) || !got.Equal(edited) {
		t.Errorf("LastWrite after thinning = %v, before %v, want %v", got, before, edited)
	}
	for _, mf := range bc.ManagedFields {
		if mf.FieldsV1 != nil || mf.Manager != "kubectl" {
			t.Errorf("entry %+v", mf)
		}
	}
	// Other Stow kinds are left whole: their status writers send the cached object back.
	repo := &v1beta1.Repository{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{fields(edited, "")}}}
	if _, _ = Stow(repo); repo.ManagedFields[0].FieldsV1 == nil {
		t.Errorf("Repository thinned")
	}
}

// Package trim holds the informer transforms that keep out of the
// operator's caches what no controller reads: the server-side apply field
// sets (managedFields) of every cached object and the pod template of the
// trigger CronJobs. With 5,000 BackupConfigurations these made up most of
// the operator's heap (docs/performance.md, "Control plane at 5,000
// configurations").
//
// What a transform drops must never be written back: a cached object whose
// managedFields were thinned is sent with ManagedFields nil (the API server
// then keeps the stored ones), and a cached CronJob, whose job template is
// gone, is changed only with a patch or with a whole desired spec.
package trim

import (
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// Owned is the transform of the informers of Stow's own Kubernetes objects
// (Jobs, pods, CronJobs, trigger ServiceAccounts, Roles, RoleBindings):
// their managedFields go, and a CronJob keeps no job template (the
// BackupConfiguration controller compares a CronJob through its spec-hash
// annotation and top-level fields, and rewrites the whole spec on drift).
func Owned(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	if cj, ok := obj.(*batchv1.CronJob); ok {
		cj.Spec.JobTemplate = batchv1.JobTemplateSpec{}
	}
	return obj, nil
}

// Stow is the transform of the informers of Stow's CRDs. A
// BackupConfiguration keeps of each managedFields entry who wrote what part
// (manager, operation, subresource) and when, not the field set: the pod
// settings guard reads when the object itself was last written
// (podguard.LastWrite). Other kinds are left whole: their status writers
// send the cached object back.
func Stow(obj any) (any, error) {
	if bc, ok := obj.(*v1beta1.BackupConfiguration); ok {
		ThinManagedFields(bc)
	}
	return obj, nil
}

// ThinManagedFields drops the field sets of obj's managedFields entries,
// keeping their manager, operation, subresource and time.
func ThinManagedFields(obj metav1.Object) {
	mfs := obj.GetManagedFields()
	if len(mfs) == 0 {
		return
	}
	thin := make([]metav1.ManagedFieldsEntry, len(mfs))
	for i, mf := range mfs {
		thin[i] = metav1.ManagedFieldsEntry{Manager: mf.Manager, Operation: mf.Operation, APIVersion: mf.APIVersion,
			Time: mf.Time, Subresource: mf.Subresource}
	}
	obj.SetManagedFields(thin)
}

var (
	_ cache.TransformFunc = Owned
	_ cache.TransformFunc = Stow
)

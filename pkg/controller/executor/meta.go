package executor

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/version"
)

// RepositoryKey is the key of a Repository in the gate and in v1beta1.AnnotationRepository.
func RepositoryKey(namespace, name string) string { return namespace + "/" + name }

// Prepare marks a resolved Job as Stow's: the name, namespace and controller
// owner are forced (the watchdog looks the Job up by them), and the managed-by
// labels and session annotations are put on the Job and on its pod template so
// that the operator's label-filtered informers see both, with the operator's
// version (app.kubernetes.io/version). The Job also gets
// the location and mode it was admitted with (see Gate).
func Prepare(job *batchv1.Job, name, namespace string, owner metav1.OwnerReference, component, sessionAnnotation, sessionName, repoKey string, lock Request) {
	if job.Annotations == nil {
		job.Annotations = map[string]string{}
	}
	job.Annotations[v1beta1.AnnotationLocation] = lock.Location
	job.Annotations[v1beta1.AnnotationLockMode] = string(lock.Mode)
	job.Name = name
	job.Namespace = namespace
	job.OwnerReferences = []metav1.OwnerReference{owner}
	for _, m := range []*metav1.ObjectMeta{&job.ObjectMeta, &job.Spec.Template.ObjectMeta} {
		if m.Labels == nil {
			m.Labels = map[string]string{}
		}
		m.Labels[v1beta1.LabelManagedBy] = v1beta1.ManagedByStow
		// Which operator build made the Job: its image is that build's
		// --image, so the label says what runs in the pod too.
		m.Labels[version.LabelKey] = version.Label()
		if _, ok := m.Labels[v1beta1.LabelComponent]; !ok {
			m.Labels[v1beta1.LabelComponent] = component
		}
		if m.Annotations == nil {
			m.Annotations = map[string]string{}
		}
		m.Annotations[sessionAnnotation] = sessionName
		m.Annotations[v1beta1.AnnotationRepository] = repoKey
	}
}

// JobFinished reports whether the Job reached Complete or Failed.
func JobFinished(job *batchv1.Job) (finished bool, failed bool) {
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete, batchv1.JobSuccessCriteriaMet:
			return true, false
		case batchv1.JobFailed:
			return true, true
		}
	}
	return false, false
}

// StopJob deletes a Job in the foreground, so the Job object stays (and keeps
// the Repository held) until its pods are really gone.
func StopJob(ctx context.Context, kube kubernetes.Interface, namespace, name string) error {
	fg := metav1.DeletePropagationForeground
	err := kube.BatchV1().Jobs(namespace).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &fg})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("stop Job %s/%s: %w", namespace, name, err)
	}
	return nil
}

// ExplainNoPod replaces the message of a session whose Job has created no
// pod for too long by the refusal the Job recorded in its FailedCreate
// Events, read only then (a Job's events are not cached).
func ExplainNoPod(ctx context.Context, kube kubernetes.Interface, job *batchv1.Job, obs *Observation) {
	if obs.State != PendingTooLong || !obs.NoPod {
		return
	}
	evs, err := kube.CoreV1().Events(job.Namespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.uid=" + string(job.UID)})
	if err != nil {
		return
	}
	if msg := NoPodMessage(job, evs.Items); msg != "" {
		obs.Message = msg
	}
}

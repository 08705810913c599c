// Package claim creates and deletes the PVCs Stow makes for a session (the
// new PVCs of a restore's volumeClaimTemplates, a session's interim
// volume) so that a PVC of the same name that is not the session's is
// never used or deleted.
package claim

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/interim"
)

// ErrTaken: a PVC of that name exists and is not the one the session made.
var ErrTaken = errors.New("a PVC of that name exists and was not created by Stow for this session")

// Create creates pvc; when a PVC of its name exists already, mine decides
// whether it is the one this session created before (a retry, an operator
// restart), else ErrTaken.
func Create(ctx context.Context, kube kubernetes.Interface, pvc *corev1.PersistentVolumeClaim, mine func(*corev1.PersistentVolumeClaim) bool) error {
	_, err := kube.CoreV1().PersistentVolumeClaims(pvc.Namespace).Create(ctx, pvc, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	existing, err := kube.CoreV1().PersistentVolumeClaims(pvc.Namespace).Get(ctx, pvc.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if !mine(existing) {
		return ErrTaken
	}
	return nil
}

// Permanent tells whether a Create error will not go away by trying again:
// the PVC is taken, invalid, or refused by admission (a quota, a policy).
func Permanent(err error) bool {
	return errors.Is(err, ErrTaken) || apierrors.IsInvalid(err) || apierrors.IsForbidden(err)
}

// Failure is the session's failure message for a PVC (what: its role,
// such as "interim volume") that Create could not make, if waiting would not
// change it.
func Failure(what, name string, err error) (string, bool) {
	switch {
	case errors.Is(err, ErrTaken):
		return fmt.Sprintf("%s: PVC %s already exists and was not created by Stow for this session; nothing is written to it", what, name), true
	case Permanent(err):
		return fmt.Sprintf("%s: cannot create PVC %s: %v", what, name, err), true
	}
	return "", false
}

// ControlledBy returns a mine function for Create: the PVC is controlled by
// the object with this UID.
func ControlledBy(owner types.UID) func(*corev1.PersistentVolumeClaim) bool {
	return func(p *corev1.PersistentVolumeClaim) bool { return internal.IsControlledBy(p, owner) }
}

// DeleteOwned deletes PVC namespace/name if it is controlled by owner; a
// PVC that is gone, being deleted or not the owner's is left alone. It
// reports whether it asked for a deletion.
func DeleteOwned(ctx context.Context, kube kubernetes.Interface, namespace, name string, owner types.UID) (bool, error) {
	pvc, err := kube.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read PVC %s/%s: %w", namespace, name, err)
	}
	if pvc.DeletionTimestamp != nil || !internal.IsControlledBy(pvc, owner) {
		return false, nil
	}
	uid := pvc.UID
	err = kube.CoreV1().PersistentVolumeClaims(namespace).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("delete PVC %s/%s: %w", namespace, name, err)
	}
	return true, nil
}

// EventInterimDeleted: the interim volume of a finished session was deleted.
const EventInterimDeleted = "InterimVolumeDeleted"

// Session is a BackupSession or RestoreSession.
type Session interface {
	metav1.Object
	runtime.Object
}

// CreateInterim creates the interim volume of session (of kind kind, run
// for invoker invokerKind/invokerName) from tpl, before its Job. msg is the
// session's failure when it cannot be made and waiting would not change
// that; err is a transient API error (the sync is retried).
func CreateInterim(ctx context.Context, kube kubernetes.Interface, session Session, kind string, tpl *corev1.PersistentVolumeClaim, invokerKind, invokerName string) (msg string, err error) {
	if tpl == nil {
		return "", nil
	}
	pvc, err := interim.Claim(tpl, session.GetNamespace(), session.GetName(), v1beta1.OwnerRef(kind, session.GetName(), session.GetUID()), invokerKind, invokerName)
	if err != nil {
		return err.Error(), nil
	}
	if err := Create(ctx, kube, pvc, ControlledBy(session.GetUID())); err != nil {
		if msg, ok := Failure("interim volume", pvc.Name, err); ok {
			return msg, nil
		}
		return "", fmt.Errorf("create PVC %s/%s: %w", pvc.Namespace, pvc.Name, err)
	}
	return "", nil
}

// DeleteInterim deletes the interim volume that session made from tpl, once
// the session is finished, so its storage is not kept, and says so in an
// Event on the session.
func DeleteInterim(ctx context.Context, kube kubernetes.Interface, rec record.EventRecorder, session Session, tpl *corev1.PersistentVolumeClaim) error {
	if tpl == nil {
		return nil
	}
	name := interim.ClaimName(tpl, session.GetName())
	deleted, err := DeleteOwned(ctx, kube, session.GetNamespace(), name, session.GetUID())
	if deleted {
		rec.Eventf(session, corev1.EventTypeNormal, EventInterimDeleted, "Deleted the interim volume PVC %s", name)
	}
	return err
}

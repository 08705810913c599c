package claim

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

func claimOf(name string, owner types.UID) *corev1.PersistentVolumeClaim {
	p := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}}
	if owner != "" {
		p.OwnerReferences = []metav1.OwnerReference{v1beta1.OwnerRef(v1beta1.KindBackupSession, "s", owner)}
	}
	return p
}

func TestCreateAndDeleteOwned(t *testing.T) {
	ctx := context.Background()
	kube := k8sfake.NewClientset(claimOf("theirs", "other"))
	if err := Create(ctx, kube, claimOf("mine", "s-uid"), ControlledBy("s-uid")); err != nil {
		t.Fatal(err)
	}
	// Again (a retry): the existing PVC is the session's.
	if err := Create(ctx, kube, claimOf("mine", "s-uid"), ControlledBy("s-uid")); err != nil {
		t.Fatalf("second create: %v", err)
	}
	err := Create(ctx, kube, claimOf("theirs", "s-uid"), ControlledBy("s-uid"))
	if !errors.Is(err, ErrTaken) || !Permanent(err) {
		t.Fatalf("create over someone else's PVC: %v", err)
	}
	if msg, ok := Failure("interim volume", "theirs", err); !ok || msg == "" {
		t.Errorf("Failure = %q, %v", msg, ok)
	}
	if deleted, err := DeleteOwned(ctx, kube, "ns", "theirs", "s-uid"); err != nil || deleted {
		t.Fatalf("deleted someone else's PVC: %v %v", deleted, err)
	}
	if deleted, err := DeleteOwned(ctx, kube, "ns", "mine", "s-uid"); err != nil || !deleted {
		t.Fatalf("own PVC not deleted: %v %v", deleted, err)
	}
	if deleted, err := DeleteOwned(ctx, kube, "ns", "mine", "s-uid"); err != nil || deleted {
		t.Fatalf("second delete: %v %v", deleted, err)
	}
	if _, err := kube.CoreV1().PersistentVolumeClaims("ns").Get(ctx, "theirs", metav1.GetOptions{}); err != nil {
		t.Fatalf("someone else's PVC: %v", err)
	}

	// Refused by the API server (a quota): permanent, with the cause.
	kube.PrependReactor("create", "persistentvolumeclaims", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "persistentvolumeclaims"}, "q", errors.New("exceeded quota"))
	})
	err = Create(ctx, kube, claimOf("new", "s-uid"), ControlledBy("s-uid"))
	if msg, ok := Failure("interim volume", "new", err); !ok || !Permanent(err) || msg == "" {
		t.Fatalf("quota refusal: %v (%q)", err, msg)
	}
}

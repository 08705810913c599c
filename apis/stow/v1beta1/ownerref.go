package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// OwnerRef is the controller reference to the Stow object of kind named
// name: the garbage collector deletes what it is on with that object, and
// only that object's controller manages it.
func OwnerRef(kind, name string, uid types.UID) metav1.OwnerReference {
	t := true
	return metav1.OwnerReference{
		APIVersion:         SchemeGroupVersion.String(),
		Kind:               kind,
		Name:               name,
		UID:                uid,
		Controller:         &t,
		BlockOwnerDeletion: &t,
	}
}

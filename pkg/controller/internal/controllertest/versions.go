package controllertest

import (
	"strconv"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
)

// StampResourceVersions makes fake give an object of resource a new
// resourceVersion on every create and update (status included), as the API
// server does; the fake tracker keeps whatever the client sent, which leaves
// internal.OwnWrites nothing to tell versions by. Patches are not stamped.
func StampResourceVersions(fake *k8stesting.Fake, resource string) {
	var last atomic.Int64
	last.Store(1000)
	stamp := func(a k8stesting.Action) (bool, runtime.Object, error) {
		var obj runtime.Object
		switch a := a.(type) {
		case k8stesting.CreateAction:
			obj = a.GetObject()
		case k8stesting.UpdateAction:
			obj = a.GetObject()
		}
		if m, ok := obj.(metav1.Object); ok {
			m.SetResourceVersion(strconv.FormatInt(last.Add(1), 10))
		}
		return false, nil, nil
	}
	fake.PrependReactor("create", resource, stamp)
	fake.PrependReactor("update", resource, stamp)
}

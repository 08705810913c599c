package backupconfiguration

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/trim"
	"github.com/stowhq/stow/pkg/resolve"
)

// The operator's memory must not grow with the cluster: Secrets, PVCs and
// Namespaces are never cached, and of CronJobs, ServiceAccounts, Roles and
// RoleBindings only Stow's (label-selected) are.
func TestOnlyStowsObjectsAreCached(t *testing.T) {
	big := map[string][]byte{"release": make([]byte, 100<<10)} // a Helm release record
	kube := healthyKube()
	for _, name := range []string{"sh.helm.release.v1.a.v1", "sh.helm.release.v1.b.v1"} {
		kube = append(kube, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "apps"}, Data: big})
	}
	kube = append(kube,
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "apps"}},
		&batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "report", Namespace: "apps"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "apps"}})
	f := newFixture(t, kube, []runtime.Object{backupConfig("bc"), repository(ns), task()})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.kinf.Start(ctx.Done())
	synced := f.kinf.WaitForCacheSync(ctx.Done())
	for typ := range synced {
		switch typ {
		case reflect.TypeOf(&corev1.Secret{}), reflect.TypeOf(&corev1.PersistentVolumeClaim{}), reflect.TypeOf(&corev1.Namespace{}):
			t.Errorf("an informer caches %v", typ)
		}
	}
	if len(synced) != 4 {
		t.Errorf("informers started: %v; want CronJobs, ServiceAccounts, Roles, RoleBindings", synced)
	}
	if cjs, _ := f.c.cronJobs.List(labels.Everything()); len(cjs) != 0 {
		t.Errorf("a CronJob Stow does not own is cached: %v", cjs[0].Name)
	}
	if sas, _ := f.c.sas.List(labels.Everything()); len(sas) != 0 {
		t.Errorf("a ServiceAccount Stow does not own is cached: %v", sas[0].Name)
	}
	for _, a := range f.kube.Actions() {
		if a.GetVerb() == "list" || a.GetVerb() == "watch" {
			if r := a.GetResource().Resource; r == "secrets" || r == "persistentvolumeclaims" || r == "namespaces" {
				t.Errorf("%s %s", a.GetVerb(), r)
			}
			var sel string
			switch a := a.(type) {
			case k8stesting.ListAction:
				sel = a.GetListRestrictions().Labels.String()
			case k8stesting.WatchAction:
				sel = a.GetWatchRestrictions().Labels.String()
			}
			if !strings.Contains(sel, v1beta1.LabelManagedBy) {
				t.Errorf("%s %s without Stow's label selector (%q)", a.GetVerb(), a.GetResource().Resource, sel)
			}
		}
	}

	// The checks read the one Secret and PVC they need, and the Secret
	// only through a get.
	f.mustSync("bc")
	if p := f.bc("bc").Status.Phase; p != v1beta1.BackupInvokerReady {
		t.Fatalf("phase %q", p)
	}
	for _, a := range f.kube.Actions() {
		if a.GetResource().Resource == "secrets" && a.GetVerb() != "get" {
			t.Errorf("%s secrets", a.GetVerb())
		}
	}
}

// A storage Secret created after its configuration is noticed without an
// event (the operator does not watch Secrets): the configuration is looked
// at again after a delay.
func TestLateSecretIsNoticed(t *testing.T) {
	f := newFixture(t, []runtime.Object{pvc(), namespace(ns, nil)}, []runtime.Object{backupConfig("bc"), repository(ns), task()})
	f.c.secretRetry = workqueue.NewTypedItemExponentialFailureRateLimiter[string](10*time.Millisecond, 100*time.Millisecond)
	f.mustSync("bc")
	if c := condOf(t, f.bc("bc"), v1beta1.BackendSecretFound); c.Status != v1beta1.ConditionFalse {
		t.Fatalf("BackendSecretFound = %+v without the Secret", c)
	}
	if _, err := f.kube.CoreV1().Secrets(ns).Create(context.Background(), secret(ns, password), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	key := waitQueued(t, f)
	if key != ns+"/bc" {
		t.Fatalf("queued %q", key)
	}
	f.mustSync("bc")
	if p := f.bc("bc").Status.Phase; p != v1beta1.BackupInvokerReady {
		t.Errorf("phase %q after the Secret appeared", p)
	}
	// Passed: no more rechecks are scheduled.
	if n := f.c.secretRetry.NumRequeues(ns + "/bc"); n != 0 {
		t.Errorf("%d secret rechecks still counted after it passed", n)
	}
}

// A target PVC created (or deleted) after its configuration is noticed
// through the metadata watch at once, with nothing of the PVCs stored.
func TestLatePVCIsNoticedThroughTheWatch(t *testing.T) {
	f := newFixture(t, []runtime.Object{secret(ns, password), namespace(ns, nil)}, []runtime.Object{backupConfig("bc"), repository(ns), task()})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			l, err := f.kube.CoreV1().PersistentVolumeClaims("").List(ctx, o)
			if err == nil && l.ResourceVersion == "" {
				l.ResourceVersion = "1" // the fake keeps no versions
			}
			return l, err
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return f.kube.CoreV1().PersistentVolumeClaims("").Watch(ctx, o)
		},
	}
	f.c.WithWatches(lw, nil)
	go f.c.pvcs.Run(ctx, lw)
	f.refresh()
	waitFor(t, "the PVC watch", f.c.pvcs.Live)
	drain(f) // the watch's start re-queues everything

	f.mustSync("bc")
	if c := condOf(t, f.bc("bc"), v1beta1.BackupTargetFound); c.Status != v1beta1.ConditionFalse {
		t.Fatalf("BackupTargetFound = %+v without the PVC", c)
	}
	// While the watch runs, a check is remembered: the next sync reads nothing.
	f.mustSync("bc")
	for _, a := range f.kube.Actions() {
		if a.GetResource().Resource == "persistentvolumeclaims" {
			t.Errorf("second sync read the PVC again: %s", a.GetVerb())
		}
	}
	if _, err := f.kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if key := waitQueued(t, f); key != ns+"/bc" {
		t.Fatalf("queued %q", key)
	}
	f.mustSync("bc")
	if p := f.bc("bc").Status.Phase; p != v1beta1.BackupInvokerReady {
		t.Errorf("phase %q after the PVC appeared", p)
	}
	if n := f.c.pvcs.Len(); n != 1 {
		t.Errorf("the PVC reader remembers %d claims, want the 1 referenced", n)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitQueued waits for one key in the queue and takes it.
func waitQueued(t *testing.T, f *fixture) string {
	t.Helper()
	waitFor(t, "a queued configuration", func() bool { return f.c.queue.Len() > 0 })
	k, _ := f.c.queue.Get()
	f.c.queue.Done(k)
	f.c.queue.Forget(k)
	return k
}

func drain(f *fixture) {
	for f.c.queue.Len() > 0 {
		k, _ := f.c.queue.Get()
		f.c.queue.Done(k)
		f.c.queue.Forget(k)
	}
}

// The heap after the caches synced does not hold the unrelated Secrets: a
// cluster-wide Secret informer would add their 20 MiB.
func TestUnrelatedSecretsCostNoHeap(t *testing.T) {
	const n, size = 200, 100 << 10
	kube := healthyKube()
	for i := range n {
		data := map[string][]byte{"release": make([]byte, size)}
		data["release"][0] = byte(i)
		kube = append(kube, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("sh.helm.release.v1.app%d.v1", i), Namespace: "apps"}, Data: data})
	}
	f := newFixture(t, kube, []runtime.Object{backupConfig("bc"), repository(ns), task()})
	heap := func() uint64 {
		goruntime.GC()
		var m goruntime.MemStats
		goruntime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.kinf.Start(ctx.Done())
	f.sinf.Start(ctx.Done())
	f.kinf.WaitForCacheSync(ctx.Done())
	f.sinf.WaitForCacheSync(ctx.Done())
	f.mustSync("bc")
	grown := int64(heap()) - int64(before)
	if grown > 5<<20 {
		t.Errorf("heap grew by %d MiB with %d unrelated Secrets of %d KiB in the cluster", grown>>20, n, size>>10)
	}
	t.Logf("heap grew by %d KiB", grown>>10)
}

// What the informer transforms save: 1,000 configurations and their
// CronJobs as the API server sends them (managedFields of the user's
// create, the operator's finalizer patch and status, the CronJob's writers)
// cost the cache this much heap with and without trim. The numbers are
// logged for docs/performance.md; the test holds the trimmed cache to less
// than half.
func TestTrimmedCacheHeap(t *testing.T) {
	const n = 1000
	mf := func(manager, sub string, fields string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "stow.dev/v1beta1",
			Time: &metav1.Time{Time: time.Now()}, Subresource: sub, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
	}
	var conds []string
	for _, typ := range []string{"TaskFound", "RepositoryFound", "ValidationPassed", "BackendSecretFound", "BackupTargetFound", "CronJobCreated"} {
		conds = append(conds, `"k:{\"type\":\"`+typ+`\"}":{".":{},"f:lastTransitionTime":{},"f:message":{},"f:observedGeneration":{},"f:reason":{},"f:status":{},"f:type":{}}`)
	}
	statusFields := `{"f:status":{".":{},"f:conditions":{".":{},` + strings.Join(conds, ",") + `},"f:observedGeneration":{},"f:phase":{},"f:schedule":{}}}`
	specFields := `{"f:spec":{".":{},"f:repository":{".":{},"f:name":{}},"f:retentionPolicy":{".":{},"f:keepLast":{},"f:name":{}},"f:runtimeSettings":{".":{},"f:pod":{".":{},"f:securityContext":{".":{},"f:runAsGroup":{},"f:runAsUser":{}}}},"f:schedule":{},"f:target":{".":{},"f:ref":{".":{},"f:apiVersion":{},"f:kind":{},"f:name":{}}}}}`
	// As decoded from the API server: fresh bytes per object.
	decoded := func(obj, into any) {
		b, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatal(err)
		}
	}
	build := func(transform cache.TransformFunc) (bcs []any, cjs []any) {
		for i := range n {
			src := backupConfig(fmt.Sprintf("scale-%04d", i))
			src.Finalizers = []string{v1beta1.Finalizer}
			src.ManagedFields = []metav1.ManagedFieldsEntry{mf("controlplane", "", specFields),
				mf("stow-operator", "", `{"f:metadata":{"f:finalizers":{".":{},"v:\"stow.dev\"":{}}}}`), mf("stow-operator", "status", statusFields)}
			bc := &v1beta1.BackupConfiguration{}
			decoded(src, bc)
			cjSrc := desiredCronJob(bc, bc, "0 0 1 1 *", false, resolve.Options{Image: "docker.io/stowhq/stow:dev"})
			cjFields, _ := json.Marshal(cjSrc.Spec)
			cjSrc.ManagedFields = []metav1.ManagedFieldsEntry{mf("stow-operator", "", string(cjFields)), mf("kube-controller-manager", "status", `{"f:status":{"f:lastScheduleTime":{}}}`)}
			cj := &batchv1.CronJob{}
			decoded(cjSrc, cj)
			o1, _ := transform(bc)
			o2, _ := transform(cj)
			bcs, cjs = append(bcs, o1), append(cjs, o2)
		}
		return bcs, cjs
	}
	heap := func() uint64 {
		goruntime.GC()
		var m goruntime.MemStats
		goruntime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	none := func(o any) (any, error) { return o, nil }
	both := func(o any) (any, error) {
		if _, ok := o.(*v1beta1.BackupConfiguration); ok {
			return trim.Stow(o)
		}
		return trim.Owned(o)
	}
	measure := func(transform cache.TransformFunc) uint64 {
		before := heap()
		bcs, cjs := build(transform)
		grown := heap() - before
		goruntime.KeepAlive(bcs)
		goruntime.KeepAlive(cjs)
		return grown
	}
	full, trimmed := measure(none), measure(both)
	t.Logf("%d configurations and CronJobs: %d KiB as sent, %d KiB trimmed", n, full>>10, trimmed>>10)
	if trimmed*2 > full {
		t.Errorf("trimmed cache %d KiB, more than half of %d KiB", trimmed>>10, full>>10)
	}
}

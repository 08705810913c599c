package backupconfiguration

import (
	"context"
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

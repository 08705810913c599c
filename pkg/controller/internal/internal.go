package internal

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"slices"
	"sort"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/metrics"
)

// Event reasons shown to users (kubectl describe).
const (
	ReasonInvalidSpec           = "InvalidSpec"
	ReasonRepositoryNotFound    = "RepositoryNotFound"
	ReasonBackendSecretNotFound = "BackendSecretNotFound"
	ReasonTargetNotFound        = "TargetNotFound"
	ReasonTaskNotFound          = "TaskNotFound"
	ReasonCronJobCreated        = "CronJobCreated"
	ReasonCronJobUpdated        = "CronJobUpdated"
	ReasonCronJobFailed         = "CronJob Creation Failed" // Stash's reason, kept for compatibility
	ReasonReady                 = "Ready"
	ReasonCleanupFailed         = "CleanupFailed"
	ReasonMetricsFailed         = "MetricsPushFailed"
	ReasonDeadlineExceeded      = "DeadlineExceeded"
)

// Lookup reads the object of a queue key with get (a lister's). found is
// false, with no error, when there is nothing to reconcile: a malformed key
// (reported), or an object that is gone (what it owns goes with it, by owner
// reference).
func Lookup[T any](key string, get func(namespace, name string) (T, error)) (obj T, found bool, err error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		utilruntime.HandleError(fmt.Errorf("invalid key %q: %v", key, err))
		return obj, false, nil
	}
	obj, err = get(ns, name)
	if apierrors.IsNotFound(err) {
		return obj, false, nil
	}
	return obj, err == nil, err
}

// KeyOf returns the namespace/name key of an informer object or tombstone.
func KeyOf(obj any) (string, bool) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(fmt.Errorf("cannot compute key: %v", err))
		return "", false
	}
	return key, true
}

// MetaOf returns the object metadata of an informer object or tombstone.
func MetaOf(obj any) (metav1.Object, bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m, ok := obj.(metav1.Object)
	return m, ok
}

// Handler returns event handlers that call fn with the object (for updates,
// with the old and then the new object).
func Handler(fn func(obj any)) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    fn,
		UpdateFunc: func(old, cur any) { fn(old); fn(cur) },
		DeleteFunc: fn,
	}
}

// SyncFunc reconciles the object of key. It returns when the object must be
// looked at again for a time-based transition (a deadline, a retry delay, a
// recheck; 0: no such time), or an error, which requeues the key with rate
// limiting. The work loop, not the sync, puts the key back in the queue (as
// kube-controller-manager's CronJob controller does).
type SyncFunc func(ctx context.Context, key string) (requeueAfter time.Duration, err error)

// Run waits for the caches, then processes queue with sync on workers
// goroutines until ctx is done; the queue is shut down on return.
func Run(ctx context.Context, name string, queue workqueue.TypedRateLimitingInterface[string], synced []cache.InformerSynced, workers int, sync SyncFunc) error {
	defer utilruntime.HandleCrash()
	logger := klog.FromContext(ctx).WithValues("controller", name)
	logger.Info("Starting controller")
	if !cache.WaitForNamedCacheSync(name, ctx.Done(), synced...) {
		queue.ShutDown()
		return fmt.Errorf("%s controller: caches did not sync", name)
	}
	RunWorkers(ctx, name, queue, workers, sync)
	logger.Info("Stopping controller")
	return nil
}

// NewQueue is the rate-limited work queue of the controller name.
func NewQueue(name string) workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: name})
}

// WatchSessions makes queue receive the key of every session that sessions
// adds or changes. Deleted sessions need no sync: their Jobs go with them
// (owner reference).
func WatchSessions(queue workqueue.TypedInterface[string], sessions cache.SharedIndexInformer) cache.InformerSynced {
	enqueue := func(obj any) {
		key, err := cache.MetaNamespaceKeyFunc(obj)
		if err != nil {
			utilruntime.HandleError(err)
			return
		}
		queue.Add(key)
	}
	if _, err := sessions.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, n any) { enqueue(n) },
	}); err != nil {
		utilruntime.HandleError(fmt.Errorf("add event handler: %v", err))
	}
	return sessions.HasSynced
}

// WatchOwnedJobs makes queue receive the key of the owner named by
// annotation on a Stow Job or pod that is added, changed or deleted. owned
// must be the informer factory filtered to Stow's objects.
func WatchOwnedJobs(queue workqueue.TypedInterface[string], owned informers.SharedInformerFactory, annotation string) []cache.InformerSynced {
	enqueue := func(obj any) {
		if key, ok := KeyFromAnnotation(obj, annotation); ok {
			queue.Add(key)
		}
	}
	var synced []cache.InformerSynced
	for _, inf := range []cache.SharedIndexInformer{owned.Batch().V1().Jobs().Informer(), owned.Core().V1().Pods().Informer()} {
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    enqueue,
			UpdateFunc: func(_, n any) { enqueue(n) },
			DeleteFunc: enqueue,
		}); err != nil {
			utilruntime.HandleError(fmt.Errorf("add event handler: %v", err))
		}
		synced = append(synced, inf.HasSynced)
	}
	return synced
}

// KeyFromAnnotation maps a Job or Pod (or its tombstone) to the
// namespace/name key of the session named in its annotation.
func KeyFromAnnotation(obj any, annotation string) (string, bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return "", false
	}
	name := m.GetAnnotations()[annotation]
	if name == "" {
		return "", false
	}
	return m.GetNamespace() + "/" + name, true
}

// RunWorkers runs workers goroutines that process queue with sync until ctx
// is done, then shuts the queue down. A sync error requeues the key with
// rate limiting; success forgets it, and requeues it after the delay sync
// returned.
func RunWorkers(ctx context.Context, name string, queue workqueue.TypedRateLimitingInterface[string], workers int, sync SyncFunc) {
	defer queue.ShutDown()
	logger := klog.FromContext(ctx).WithValues("controller", name)
	for i := 0; i < max(workers, 1); i++ {
		go wait.UntilWithContext(ctx, func(ctx context.Context) {
			for ProcessNext(ctx, logger, queue, observed(name, recovered(sync))) {
			}
		}, time.Second)
	}
	<-ctx.Done()
}

// recovered turns a panic of sync into an error: the key is retried with
// backoff and the panic logged with its stack, while every other object goes
// on being reconciled. A panic that reached the worker would end the
// process, and the same object would end the next one: a crash loop in which
// no backup of any namespace runs (principle 10 of the design).
func recovered(sync SyncFunc) SyncFunc {
	return func(ctx context.Context, key string) (after time.Duration, err error) {
		defer func() {
			if r := recover(); r != nil {
				after, err = 0, fmt.Errorf("sync of %s panicked: %v\n%s", key, r, debug.Stack())
			}
		}()
		return sync(ctx, key)
	}
}

// observed wraps sync so every reconcile is counted in the operator metrics.
func observed(name string, sync SyncFunc) SyncFunc {
	return func(ctx context.Context, key string) (after time.Duration, err error) {
		defer func(start time.Time) { metrics.ObserveReconcile(name, start, err) }(time.Now())
		return sync(ctx, key)
	}
}

// ProcessNext handles one key of queue; it returns false when the queue is shut down.
func ProcessNext(ctx context.Context, logger klog.Logger, queue workqueue.TypedRateLimitingInterface[string], sync SyncFunc) bool {
	key, quit := queue.Get()
	if quit {
		return false
	}
	defer queue.Done(key)
	after, err := sync(ctx, key)
	if err != nil {
		logger.Error(err, "sync failed, will retry", "key", key, "retries", queue.NumRequeues(key))
		queue.AddRateLimited(key)
		return true
	}
	queue.Forget(key)
	if after > 0 {
		queue.AddAfter(key, after)
	}
	return true
}

// Sooner is the earlier of two requeue delays, 0 meaning none.
func Sooner(a, b time.Duration) time.Duration {
	if a <= 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

// HasFinalizer reports whether obj carries the finalizer f.
func HasFinalizer(obj metav1.Object, f string) bool {
	return slices.Contains(obj.GetFinalizers(), f)
}

// AddFinalizer adds f to obj; it reports whether obj changed.
func AddFinalizer(obj metav1.Object, f string) bool {
	if HasFinalizer(obj, f) {
		return false
	}
	obj.SetFinalizers(append(obj.GetFinalizers(), f))
	return true
}

// RemoveFinalizer removes f from obj; it reports whether obj changed.
func RemoveFinalizer(obj metav1.Object, f string) bool {
	fs := obj.GetFinalizers()
	out := slices.DeleteFunc(slices.Clone(fs), func(s string) bool { return s == f })
	if len(out) == len(fs) {
		return false
	}
	obj.SetFinalizers(out)
	return true
}

// FinalizerPatch is a JSON merge patch that sets obj's finalizers (as already
// changed in memory) guarded by its resourceVersion. Finalizers are written
// with a patch, never an Update, so the spec is sent back untouched: an
// Update re-serializes the typed object (adding empty optional structs),
// which the "spec is immutable" rule of sessions rejects and which would
// change a user's spec for nothing.
func FinalizerPatch(obj metav1.Object) []byte {
	fins := obj.GetFinalizers()
	if fins == nil {
		fins = []string{}
	}
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"finalizers": fins, "resourceVersion": obj.GetResourceVersion()}})
	return b
}

// IsControlledBy reports whether obj's controller reference points at uid.
func IsControlledBy(obj metav1.Object, uid types.UID) bool {
	ref := metav1.GetControllerOf(obj)
	return ref != nil && ref.UID == uid
}

// UpdateStatus writes a status with optimistic concurrency: mutate is applied
// to cur (first attempt) or to a fresh copy from get (after a conflict), and
// update is called only when mutate reports a change. A write that succeeds
// is recorded in w (nil: not recorded) as replacing cur's resourceVersion
// and the one it was written over.
func UpdateStatus[T metav1.Object](w *OwnWrites, cur T, get func() (T, error), mutate func(T) bool, update func(T) error) error {
	key, from := cur.GetNamespace()+"/"+cur.GetName(), cur.GetResourceVersion()
	first := true
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		obj := cur
		if !first {
			fresh, err := get()
			if err != nil {
				return err
			}
			obj = fresh
		}
		first = false
		if !mutate(obj) {
			return nil
		}
		over := obj.GetResourceVersion()
		if err := update(obj); err != nil {
			return err
		}
		w.Replaced(key, from, over)
		return nil
	})
}

// UpdateSessionStatus writes cur's status, computed by a sync from orig,
// through UpdateStatus. The operator is the only writer of session status,
// so after a conflict the status is put on the newest object — unless that
// one is already final while orig was not: the sync then ran on a stale
// cache, before the write that ended the session, and the final status
// stands (OwnWrites keeps such syncs from running at all after the
// controller's own writes; this covers a write it does not know of, such as
// one by an earlier operator process). final tells whether an object's
// phase is final; setStatus copies cur's status onto another object.
func UpdateSessionStatus[T interface {
	comparable
	metav1.Object
}](w *OwnWrites, cur T, origFinal bool, final func(T) bool, setStatus func(T), get func() (T, error), update func(T) error) error {
	return UpdateStatus(w, cur, get, func(obj T) bool {
		if obj == cur {
			return true
		}
		if final(obj) && !origFinal {
			return false
		}
		setStatus(obj)
		return true
	}, update)
}

// SortReferences orders references by kind, namespace and name.
func SortReferences(refs []v1beta1.InvokerReference) {
	sort.Slice(refs, func(i, j int) bool {
		a, b := refs[i], refs[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
}

// RepositoryKey is the namespace/name of the Repository an invoker in
// invokerNS references with ref.
func RepositoryKey(invokerNS string, ref v1beta1.ObjectRef) string {
	ns := ref.Namespace
	if ns == "" {
		ns = invokerNS
	}
	return ns + "/" + ref.Name
}

// UsableRepository is repo as an invoker in namespace ns may see it: a
// Repository of another namespace whose usagePolicy does not allow ns is
// nil, so that it is reported exactly as one that does not exist and
// nothing more of it (its Secret, its backend, its pod settings) is read or
// reported: a writer in ns learns nothing about a namespace whose
// Repository it may not use. nsLabels gives ns's labels, read only when
// needed.
func UsableRepository(repo *v1beta1.Repository, ns string, nsLabels func() map[string]string) *v1beta1.Repository {
	if repo == nil || repo.Namespace == ns || v1beta1.ValidateUsage(repo, ns, nsLabels()) == nil {
		return repo
	}
	return nil
}

// TimeOutOf is the timeOut a session's deadline was fixed from (see
// SetSessionDeadline). Messages name it rather than the invoker's current
// timeOut, which may have changed or been removed since (an expired session
// whose configuration no longer has a timeOut once crashed the operator).
func TimeOutOf(created metav1.Time, deadline *metav1.Time) time.Duration {
	if deadline == nil {
		return 0
	}
	return deadline.Sub(created.Time)
}

// SetSessionDeadline fixes a session's deadline, from its creation and its
// invoker's timeOut, the first time the session is seen: a later change of
// timeOut does not move the deadline of a session already running.
func SetSessionDeadline(deadline **metav1.Time, created metav1.Time, timeOut *v1beta1.Duration) {
	if timeOut != nil && *deadline == nil {
		d := metav1.NewTime(created.Add(timeOut.Duration))
		*deadline = &d
	}
}

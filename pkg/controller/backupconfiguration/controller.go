// Package backupconfiguration reconciles BackupConfigurations: it checks what
// a backup needs (Task, Repository, its Secret, the target PVC), reports that
// as conditions and a phase, and keeps the trigger CronJob and its
// least-privilege ServiceAccount, Role and RoleBinding in sync. The CronJob is
// suspended whenever a backup could not succeed (missing PVC, Secret, ...),
// while the configuration is paused, and while a restore pauses it.
package backupconfiguration

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	rbaclisters "k8s.io/client-go/listers/rbac/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/client/clientset/versioned"
	"github.com/stowhq/stow/client/informers/externalversions"
	stowlisters "github.com/stowhq/stow/client/listers/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/controller/internal/index"
	"github.com/stowhq/stow/pkg/controller/internal/lookup"
	"github.com/stowhq/stow/pkg/controller/podguard"
	"github.com/stowhq/stow/pkg/metrics"
	"github.com/stowhq/stow/pkg/names"
	"github.com/stowhq/stow/pkg/resolve"
)

// Indexes added to the BackupConfiguration informer, so that a change of a
// Repository (index.ByRepository), PVC or Task re-queues only the
// configurations that use it.
var (
	IndexByPVC  = index.Index{Name: "stow.dev/bc-by-pvc", Func: indexByPVC}   // "<ns>/<pvc name>"
	IndexByTask = index.Index{Name: "stow.dev/bc-by-task", Func: indexByTask} // task name
)

// Controller reconciles BackupConfigurations.
//
// What it caches is what Stow owns: its CronJobs, ServiceAccounts, Roles and
// RoleBindings come from owned, an informer factory selected by the label
// app.kubernetes.io/managed-by=stow.dev. What it only checks (the storage
// Secret's key, the target PVC, a Namespace's labels) it reads on demand
// through lookup Readers, so 10,000 Helm release Secrets or unrelated PVCs
// cost the operator no memory (docs/performance.md, "Memory").
type Controller struct {
	kube     kubernetes.Interface
	stow     versioned.Interface
	recorder record.EventRecorder
	opts     resolve.Options
	now      func() time.Time
	pusher   metrics.SessionPusher

	bcInformer cache.SharedIndexInformer
	bcs        stowlisters.BackupConfigurationLister
	repos      stowlisters.RepositoryLister
	tasks      stowlisters.TaskLister
	fns        stowlisters.FunctionLister
	guard      *podguard.Guard
	restores   stowlisters.RestoreSessionLister
	sas        corelisters.ServiceAccountLister
	cronJobs   batchlisters.CronJobLister
	roles      rbaclisters.RoleLister
	bindings   rbaclisters.RoleBindingLister
	// sessionInformer's sessions decide part of the status (sessions.go),
	// looked up by invoker (index.ByInvoker).
	sessionInformer cache.SharedIndexInformer

	// secrets is read on demand (get only: the operator may not list or
	// watch Secrets) and remembered for secretTTL; a failing Secret check
	// is looked at again after secretRetry's delay. pvcs and namespaces are
	// read on demand and remembered until a metadata-only watch (WithWatches)
	// reports a change of that object.
	secrets     *lookup.Reader[secretState]
	pvcs        *lookup.Reader[pvcState]
	namespaces  *lookup.Reader[map[string]string]
	secretRetry workqueue.TypedRateLimiter[string]
	pvcWatch    cache.ListerWatcherWithContext
	nsWatch     cache.ListerWatcherWithContext

	owned         informers.SharedInformerFactory
	stowInformers externalversions.SharedInformerFactory
	synced        []cache.InformerSynced
	queue         workqueue.TypedRateLimitingInterface[string]
	// writes holds back a sync whose cache has not seen this controller's
	// last write of that configuration (internal.OwnWrites).
	writes *internal.OwnWrites
}

// secretState is what the controller keeps of a storage Secret: never its values.
type secretState struct{ hasPassword bool }

// pvcState is what the controller keeps of a target PVC.
type pvcState struct{ deleting bool }

// How long a Secret check is remembered, and how soon (growing to how
// late) a configuration whose Secret check failed is checked again: no
// event tells the operator that a Secret appeared, since it does not watch
// Secrets.
const (
	secretTTL          = 5 * time.Second
	secretRecheckFirst = 5 * time.Second
	secretRecheckMax   = 5 * time.Minute
)

// NewController wires the informers and event handlers. owned must be
// filtered to Stow's objects (label app.kubernetes.io/managed-by=stow.dev).
// Start the factories (Run does too) and call Run.
func NewController(kube kubernetes.Interface, stow versioned.Interface, owned informers.SharedInformerFactory,
	stowInformers externalversions.SharedInformerFactory, recorder record.EventRecorder, opts resolve.Options) *Controller {
	s := stowInformers.Stow().V1beta1()
	bcInf, repoInf, taskInf, rsInf := s.BackupConfigurations(), s.Repositories(), s.Tasks(), s.RestoreSessions()
	saInf := owned.Core().V1().ServiceAccounts()
	cjInf := owned.Batch().V1().CronJobs()
	roleInf, rbInf := owned.Rbac().V1().Roles(), owned.Rbac().V1().RoleBindings()

	c := &Controller{
		kube: kube, stow: stow, recorder: recorder, opts: opts, now: time.Now, pusher: metrics.Nop{},
		bcInformer: bcInf.Informer(),
		bcs:        bcInf.Lister(), repos: repoInf.Lister(), tasks: taskInf.Lister(), fns: s.Functions().Lister(), restores: rsInf.Lister(),
		sas: saInf.Lister(), cronJobs: cjInf.Lister(), roles: roleInf.Lister(), bindings: rbInf.Lister(), sessionInformer: s.BackupSessions().Informer(),
		owned: owned, stowInformers: stowInformers,
		secretRetry: workqueue.NewTypedItemExponentialFailureRateLimiter[string](secretRecheckFirst, secretRecheckMax),
		writes:      internal.NewOwnWrites(nil),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "backupconfiguration"}),
	}
	c.secrets = lookup.NewTTL("secrets", secretTTL, func(ctx context.Context, ns, name string) (secretState, error) {
		sec, err := kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return secretState{}, err
		}
		return secretState{hasPassword: len(sec.Data["RESTIC_PASSWORD"]) > 0 || sec.StringData["RESTIC_PASSWORD"] != ""}, nil
	})
	c.pvcs = lookup.NewWatched("persistentvolumeclaims", func(ctx context.Context, ns, name string) (pvcState, error) {
		claim, err := kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return pvcState{}, err
		}
		return pvcState{deleting: claim.DeletionTimestamp != nil}, nil
	})
	c.namespaces = lookup.NewWatched("namespaces", func(ctx context.Context, _, name string) (map[string]string, error) {
		n, err := kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return n.Labels, nil
	})
	c.pvcs.OnChange(func(ns, name string) { c.enqueueIndexed(IndexByPVC, ns+"/"+name) })
	c.pvcs.OnRestart(c.enqueueAll)
	c.namespaces.OnChange(func(_, name string) { c.enqueueNamespace(name) })
	c.namespaces.OnRestart(c.enqueueAll)

	for _, ix := range []index.Index{index.ByRepository, IndexByPVC, IndexByTask} {
		if err := ix.AddTo(c.bcInformer); err != nil {
			// The informer already ran: lookups scan the store instead.
			klog.InfoS("cannot add a BackupConfiguration index; falling back to scans", "index", ix.Name, "err", err)
		}
	}
	if err := index.ByInvoker.AddTo(c.sessionInformer); err != nil {
		klog.InfoS("cannot add a BackupSession index; falling back to scans", "index", index.ByInvoker.Name, "err", err)
	}

	// A Repository's status (references, maintenance, size) changes often
	// and means nothing to its configurations; with 5,000 of them each
	// status write would re-queue all 5,000. (The filter is chosen here, not
	// by comparing informers: Informer() returns a new wrapper per call.)
	repoUpdate := func(old, cur any) {
		if repositorySpecChanged(old, cur) {
			c.onRepository(cur)
		}
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		fn  func(any)
		// update, when set, replaces fn for updates.
		update func(old, cur any)
	}{
		{c.bcInformer, c.enqueue, nil},
		{repoInf.Informer(), c.onRepository, repoUpdate},
		{taskInf.Informer(), c.onTask, nil},
		// A Function's pod settings or allowed namespaces decide whether
		// the configurations whose Tasks use it may run; Functions change
		// rarely, so all are re-examined.
		{s.Functions().Informer(), func(any) { c.enqueueAll() }, nil},
		{rsInf.Informer(), c.onRestoreSession, nil},
		{saInf.Informer(), c.onOwned, nil},
		{cjInf.Informer(), c.onOwned, nil},
		{roleInf.Informer(), c.onOwned, nil},
		{rbInf.Informer(), c.onOwned, nil},
	}
	c.synced = append(c.synced, internal.WatchSessionResults(s.BackupSessions().Informer(), c.onSessionResult))
	if _, err := c.sessionInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: c.onSessionAdded}); err != nil {
		utilruntime.HandleError(fmt.Errorf("backupconfiguration controller: add event handler: %v", err))
	}
	for _, h := range handlers {
		handler := internal.Handler(h.fn)
		if h.update != nil {
			handler.UpdateFunc = h.update
		}
		if _, err := h.inf.AddEventHandler(handler); err != nil {
			utilruntime.HandleError(fmt.Errorf("backupconfiguration controller: add event handler: %v", err))
		}
		c.synced = append(c.synced, h.inf.HasSynced)
	}
	return c
}

// WithWatches makes PVC and Namespace changes re-queue the configurations
// they concern: pvcs and namespaces list and watch those kinds in all
// namespaces (metadata only is enough; nothing of them is stored). Without
// it, every check reads, and a PVC or Namespace change is seen at the next
// resync.
func (c *Controller) WithWatches(pvcs, namespaces cache.ListerWatcherWithContext) *Controller {
	c.pvcWatch, c.nsWatch = pvcs, namespaces
	return c
}

// Run starts the informer factories (idempotent), waits for the caches and
// processes the queue with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) error {
	c.owned.Start(ctx.Done())
	c.stowInformers.Start(ctx.Done())
	if c.pvcWatch != nil {
		go c.pvcs.Run(ctx, c.pvcWatch)
	}
	if c.nsWatch != nil {
		go c.namespaces.Run(ctx, c.nsWatch)
	}
	return internal.Run(ctx, "backupconfiguration", c.queue, c.synced, workers, c.sync)
}

func (c *Controller) enqueue(obj any) {
	if key, ok := internal.KeyOf(obj); ok {
		c.queue.Add(key)
	}
}

func (c *Controller) enqueueIndexed(ix index.Index, value string) {
	for _, bc := range index.Lookup[*v1beta1.BackupConfiguration](c.bcInformer, ix, value) {
		c.queue.Add(bc.Namespace + "/" + bc.Name)
	}
}

// repositorySpecChanged reports whether what a configuration's checks read
// of a Repository (spec, deletion, labels) may have changed.
func repositorySpecChanged(old, cur any) bool {
	o, ok1 := old.(*v1beta1.Repository)
	n, ok2 := cur.(*v1beta1.Repository)
	if !ok1 || !ok2 {
		return true
	}
	return o.Generation != n.Generation || (o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil) ||
		!equality.Semantic.DeepEqual(o.Labels, n.Labels) || !equality.Semantic.DeepEqual(o.Spec, n.Spec)
}

func (c *Controller) onRepository(obj any) {
	if key, ok := internal.KeyOf(obj); ok {
		c.enqueueIndexed(index.ByRepository, key)
	}
}

func (c *Controller) onTask(obj any) {
	if m, ok := internal.MetaOf(obj); ok {
		c.enqueueIndexed(IndexByTask, m.GetName())
	}
}

// enqueueNamespace re-queues the configurations of a namespace, whose
// labels may decide a Repository usagePolicy.
func (c *Controller) enqueueNamespace(namespace string) {
	bcs, _ := c.bcs.BackupConfigurations(namespace).List(labels.Everything())
	for _, bc := range bcs {
		c.queue.Add(bc.Namespace + "/" + bc.Name)
	}
}

// enqueueAll re-queues every configuration: a watch restarted and may have
// missed events.
func (c *Controller) enqueueAll() {
	bcs, _ := c.bcs.List(labels.Everything())
	for _, bc := range bcs {
		c.queue.Add(bc.Namespace + "/" + bc.Name)
	}
}

// onRestoreSession re-queues the configurations a restore pauses.
func (c *Controller) onRestoreSession(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	rs, ok := obj.(*v1beta1.RestoreSession)
	if !ok {
		return
	}
	for _, name := range rs.Status.PausedBackups {
		c.queue.Add(rs.Namespace + "/" + name)
	}
}

// onOwned re-queues the configuration controlling a CronJob, ServiceAccount,
// Role or RoleBinding, so that a deleted or edited object is restored. The
// namespace's shared trigger identity has no controller: a change of it
// re-queues one configuration that uses it, whose reconcile restores it for
// all; with none (the last one was deleted while the operator was down, or
// before its cache saw the objects) it queues sharedTriggerKey, whose sync
// deletes them. The informers list every object at start, so this is also
// the sweep after a restart.
func (c *Controller) onOwned(obj any) {
	m, ok := internal.MetaOf(obj)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOf(m); ref != nil && ref.Kind == v1beta1.KindBackupConfiguration && ref.APIVersion == v1beta1.SchemeGroupVersion.String() {
		c.queue.Add(m.GetNamespace() + "/" + ref.Name)
		return
	}
	if m.GetName() == names.NamespaceTrigger {
		if bc := c.sharedTriggerUser(m.GetNamespace(), ""); bc != nil {
			c.queue.Add(bc.Namespace + "/" + bc.Name)
		} else {
			c.queue.Add(sharedTriggerKey(m.GetNamespace()))
		}
	}
}

// sharedTriggerKey is the queue key for namespace ns's shared trigger
// identity: "ns/", which no configuration's key can be (names are not
// empty).
func sharedTriggerKey(ns string) string { return ns + "/" }

// sharedTriggerNamespace is the namespace of a sharedTriggerKey; ok is
// false for a configuration's key.
func sharedTriggerNamespace(key string) (ns string, ok bool) { return strings.CutSuffix(key, "/") }

func indexByPVC(obj any) ([]string, error) {
	bc, ok := obj.(*v1beta1.BackupConfiguration)
	if !ok || bc.Spec.Target == nil || bc.Spec.Target.Ref.Name == "" {
		return nil, nil
	}
	ns := bc.Spec.Target.Ref.Namespace
	if ns == "" {
		ns = bc.Namespace
	}
	return []string{ns + "/" + bc.Spec.Target.Ref.Name}, nil
}

func indexByTask(obj any) ([]string, error) {
	bc, ok := obj.(*v1beta1.BackupConfiguration)
	if !ok {
		return nil, nil
	}
	if bc.Spec.Task.Name == "" {
		return []string{v1beta1.TaskPVCBackup}, nil
	}
	return []string{bc.Spec.Task.Name}, nil
}

// event records an event on bc; nil-safe so tests may omit the recorder.
func (c *Controller) event(bc *v1beta1.BackupConfiguration, typ, reason, msg string) {
	if c.recorder != nil {
		c.recorder.Event(bc, typ, reason, msg)
	}
}

// WithGuard makes the controller check pod settings (podguard): a
// configuration whose Job would ask for them unchecked is Invalid.
func (c *Controller) WithGuard(g *podguard.Guard) *Controller {
	c.guard = g
	return c
}

// WithMetrics makes deletion of a BackupConfiguration also delete its
// Pushgateway group, so a removed backup leaves no stale series or alerts.
func (c *Controller) WithMetrics(p metrics.SessionPusher) *Controller {
	c.pusher = p
	return c
}

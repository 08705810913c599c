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
	"time"

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
	"github.com/stowhq/stow/pkg/controller/podguard"
	"github.com/stowhq/stow/pkg/metrics"
	"github.com/stowhq/stow/pkg/resolve"
)

// ControllerName names the workqueue and the event source.
const ControllerName = "BackupConfiguration Controller"

// Indexes added to the BackupConfiguration informer, so that a change of a
// Repository, PVC or Task re-queues only the configurations that use it.
const (
	IndexByRepository = "stow.dev/bc-by-repository" // "<repo ns>/<repo name>"
	IndexByPVC        = "stow.dev/bc-by-pvc"        // "<ns>/<pvc name>"
	IndexByTask       = "stow.dev/bc-by-task"       // task name
)

// Controller reconciles BackupConfigurations.
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
	secrets    corelisters.SecretLister
	pvcs       corelisters.PersistentVolumeClaimLister
	namespaces corelisters.NamespaceLister
	sas        corelisters.ServiceAccountLister
	cronJobs   batchlisters.CronJobLister
	roles      rbaclisters.RoleLister
	bindings   rbaclisters.RoleBindingLister

	kubeInformers informers.SharedInformerFactory
	stowInformers externalversions.SharedInformerFactory
	synced        []cache.InformerSynced
	queue         workqueue.TypedRateLimitingInterface[string]
}

// NewController wires the informers and event handlers. Start the factories
// (Run does too) and call Run.
func NewController(kube kubernetes.Interface, stow versioned.Interface, kubeInformers informers.SharedInformerFactory,
	stowInformers externalversions.SharedInformerFactory, recorder record.EventRecorder, opts resolve.Options) *Controller {
	s := stowInformers.Stow().V1beta1()
	bcInf, repoInf, taskInf, rsInf := s.BackupConfigurations(), s.Repositories(), s.Tasks(), s.RestoreSessions()
	core := kubeInformers.Core().V1()
	secInf, pvcInf, nsInf, saInf := core.Secrets(), core.PersistentVolumeClaims(), core.Namespaces(), core.ServiceAccounts()
	cjInf := kubeInformers.Batch().V1().CronJobs()
	roleInf, rbInf := kubeInformers.Rbac().V1().Roles(), kubeInformers.Rbac().V1().RoleBindings()

	c := &Controller{
		kube: kube, stow: stow, recorder: recorder, opts: opts, now: time.Now, pusher: metrics.Nop{},
		bcInformer: bcInf.Informer(),
		bcs:        bcInf.Lister(), repos: repoInf.Lister(), tasks: taskInf.Lister(), fns: s.Functions().Lister(), restores: rsInf.Lister(),
		secrets: secInf.Lister(), pvcs: pvcInf.Lister(), namespaces: nsInf.Lister(), sas: saInf.Lister(),
		cronJobs: cjInf.Lister(), roles: roleInf.Lister(), bindings: rbInf.Lister(),
		kubeInformers: kubeInformers, stowInformers: stowInformers,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "backupconfiguration"}),
	}
	if err := c.bcInformer.AddIndexers(cache.Indexers{
		IndexByRepository: indexByRepository, IndexByPVC: indexByPVC, IndexByTask: indexByTask,
	}); err != nil {
		// The informer already ran or another controller added the same
		// names: lookups fall back to scanning the lister.
		klog.InfoS("cannot add BackupConfiguration indexes; falling back to scans", "err", err)
	}

	handlers := []struct {
		inf cache.SharedIndexInformer
		fn  func(any)
	}{
		{c.bcInformer, c.enqueue},
		{repoInf.Informer(), c.onRepository},
		{taskInf.Informer(), c.onTask},
		{rsInf.Informer(), c.onRestoreSession},
		{secInf.Informer(), c.onSecret},
		{pvcInf.Informer(), c.onPVC},
		{nsInf.Informer(), c.onNamespace},
		{saInf.Informer(), c.onOwned},
		{cjInf.Informer(), c.onOwned},
		{roleInf.Informer(), c.onOwned},
		{rbInf.Informer(), c.onOwned},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(internal.Handler(h.fn)); err != nil {
			utilruntime.HandleError(fmt.Errorf("backupconfiguration controller: add event handler: %v", err))
		}
		c.synced = append(c.synced, h.inf.HasSynced)
	}
	return c
}

// Run starts the informer factories (idempotent), waits for the caches and
// processes the queue with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) error {
	c.kubeInformers.Start(ctx.Done())
	c.stowInformers.Start(ctx.Done())
	return internal.Run(ctx, "backupconfiguration", c.queue, c.synced, workers, c.sync)
}

func (c *Controller) enqueue(obj any) {
	if key, ok := internal.KeyOf(obj); ok {
		c.queue.Add(key)
	}
}

func (c *Controller) enqueueIndexed(index, value string) {
	for _, bc := range c.byIndex(index, value) {
		c.queue.Add(bc.Namespace + "/" + bc.Name)
	}
}

// byIndex returns the configurations whose index value is value.
func (c *Controller) byIndex(index, value string) []*v1beta1.BackupConfiguration {
	var out []*v1beta1.BackupConfiguration
	if objs, err := c.bcInformer.GetIndexer().ByIndex(index, value); err == nil {
		for _, o := range objs {
			if bc, ok := o.(*v1beta1.BackupConfiguration); ok {
				out = append(out, bc)
			}
		}
		return out
	}
	fn := map[string]cache.IndexFunc{IndexByRepository: indexByRepository, IndexByPVC: indexByPVC, IndexByTask: indexByTask}[index]
	all, _ := c.bcs.List(labels.Everything())
	for _, bc := range all {
		if vals, _ := fn(bc); len(vals) == 1 && vals[0] == value {
			out = append(out, bc)
		}
	}
	return out
}

func (c *Controller) onRepository(obj any) {
	if key, ok := internal.KeyOf(obj); ok {
		c.enqueueIndexed(IndexByRepository, key)
	}
}

func (c *Controller) onTask(obj any) {
	if m, ok := internal.MetaOf(obj); ok {
		c.enqueueIndexed(IndexByTask, m.GetName())
	}
}

func (c *Controller) onPVC(obj any) {
	if key, ok := internal.KeyOf(obj); ok {
		c.enqueueIndexed(IndexByPVC, key)
	}
}

// onSecret re-queues the users of every Repository whose storage Secret has
// this name: the Secret may live in the Repository's namespace or, for a
// cross-namespace Repository, in the configuration's (the Job reads it there).
func (c *Controller) onSecret(obj any) {
	m, ok := internal.MetaOf(obj)
	if !ok {
		return
	}
	repos, _ := c.repos.List(labels.Everything())
	for _, r := range repos {
		if r.Spec.Backend.StorageSecretName != m.GetName() {
			continue
		}
		for _, bc := range c.byIndex(IndexByRepository, r.Namespace+"/"+r.Name) {
			if r.Namespace == m.GetNamespace() || bc.Namespace == m.GetNamespace() {
				c.queue.Add(bc.Namespace + "/" + bc.Name)
			}
		}
	}
}

// onNamespace re-queues the configurations of a namespace whose labels may
// decide a Repository usagePolicy.
func (c *Controller) onNamespace(obj any) {
	m, ok := internal.MetaOf(obj)
	if !ok {
		return
	}
	bcs, _ := c.bcs.BackupConfigurations(m.GetName()).List(labels.Everything())
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
// Role or RoleBinding, so that a deleted or edited object is restored.
func (c *Controller) onOwned(obj any) {
	m, ok := internal.MetaOf(obj)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOf(m); ref != nil && ref.Kind == v1beta1.KindBackupConfiguration && ref.APIVersion == v1beta1.SchemeGroupVersion.String() {
		c.queue.Add(m.GetNamespace() + "/" + ref.Name)
	}
}

func indexByRepository(obj any) ([]string, error) {
	bc, ok := obj.(*v1beta1.BackupConfiguration)
	if !ok || bc.Spec.Repository.Name == "" {
		return nil, nil
	}
	return []string{internal.RepositoryKey(bc.Namespace, bc.Spec.Repository)}, nil
}

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

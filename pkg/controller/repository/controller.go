// Package repository reconciles Repositories: finalizer, validation
// condition, status.backend and status.references (the BackupConfigurations
// and RestoreSessions that use it, computed from listers), what the backups
// through it learnt (sessions.go: backup times, snapshot count, last
// cleanup), and the repository's maintenance (check, prune, refresh,
// unlock) on its schedule or on request, in Jobs of its own, with their results: integrity, size,
// snapshot count, status.maintenance.
//
// Deleting a Repository with wipeOut deletes its data at the backend first,
// in a Job of its own (wipe.go); the finalizer stays until then.
package repository

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
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
	"github.com/stowhq/stow/pkg/controller/jobrun"
	"github.com/stowhq/stow/pkg/controller/podguard"
	"github.com/stowhq/stow/pkg/metrics"
	"github.com/stowhq/stow/pkg/podpolicy"
)

// Controller reconciles Repositories.
type Controller struct {
	kube     kubernetes.Interface
	stow     versioned.Interface
	recorder record.EventRecorder
	now      func() time.Time

	repos    stowlisters.RepositoryLister
	bcs      stowlisters.BackupConfigurationLister
	restores stowlisters.RestoreSessionLister
	// The configurations and restores of a Repository are looked up by
	// index.ByRepository, their sessions (which decide the backup status,
	// sessions.go) by index.ByInvoker.
	bcInformer, rsInformer, sessionInformer cache.SharedIndexInformer
	// maint and run are set by WithMaintenance.
	maint *Maintenance
	run   *jobrun.Runner
	guard *podguard.Guard
	// pusher pushes the maintenance results (metrics.Nop unless WithMetrics).
	pusher metrics.SessionPusher

	synced []cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
	// writes holds back a sync whose cache has not seen this controller's
	// last write of that Repository (a maintenance run it recorded would
	// be due again in the older copy).
	writes *internal.OwnWrites
}

// NewController wires the informers; the caller starts stowInformers.
func NewController(kube kubernetes.Interface, stow versioned.Interface,
	stowInformers externalversions.SharedInformerFactory, recorder record.EventRecorder) *Controller {
	s := stowInformers.Stow().V1beta1()
	repoInf, bcInf, rsInf := s.Repositories(), s.BackupConfigurations(), s.RestoreSessions()
	c := &Controller{
		kube: kube, stow: stow, recorder: recorder, now: time.Now, pusher: metrics.Nop{},
		repos: repoInf.Lister(), bcs: bcInf.Lister(), restores: rsInf.Lister(),
		bcInformer: bcInf.Informer(), rsInformer: rsInf.Informer(), sessionInformer: s.BackupSessions().Informer(),
		queue: internal.NewQueue("repository"), writes: internal.NewOwnWrites(nil),
	}
	for _, ix := range []struct {
		inf cache.SharedIndexInformer
		ix  index.Index
	}{{c.bcInformer, index.ByRepository}, {c.rsInformer, index.ByRepository}, {c.sessionInformer, index.ByInvoker}} {
		if err := ix.ix.AddTo(ix.inf); err != nil {
			// The informer already ran: lookups scan the store instead.
			klog.InfoS("repository controller: cannot add an index; falling back to scans", "index", ix.ix.Name, "err", err)
		}
	}
	for _, h := range []struct {
		inf cache.SharedIndexInformer
		fn  func(any)
	}{
		{repoInf.Informer(), c.enqueue},
		{bcInf.Informer(), c.onInvoker},
		{rsInf.Informer(), c.onInvoker},
	} {
		if _, err := h.inf.AddEventHandler(internal.Handler(h.fn)); err != nil {
			utilruntime.HandleError(fmt.Errorf("repository controller: add event handler: %v", err))
		}
		c.synced = append(c.synced, h.inf.HasSynced)
	}
	c.synced = append(c.synced, internal.WatchSessionResults(s.BackupSessions().Informer(), c.onSessionResult))
	return c
}

// WithGuard makes the controller check pod settings (podguard): a
// Repository whose Jobs would ask for them unchecked (a hostPath volume) is
// invalid and runs no maintenance.
func (c *Controller) WithGuard(g *podguard.Guard) *Controller {
	c.guard = g
	return c
}

// WithMetrics makes the controller push the repository metrics its
// maintenance Jobs measure, and delete the Repository's group with it.
func (c *Controller) WithMetrics(p metrics.SessionPusher) *Controller {
	c.pusher = p
	return c
}

// WithMaintenance makes the controller run maintenance Jobs. owned must be
// the informer factory filtered to Stow's objects (its Jobs and pods).
func (c *Controller) WithMaintenance(m Maintenance, owned informers.SharedInformerFactory) *Controller {
	c.maint = &m
	jobInf, podInf := owned.Batch().V1().Jobs(), owned.Core().V1().Pods()
	// Placed: a local backend's ReadWriteOnce volume in use is mounted on
	// its node, and a maintenance pod whose node is lost ends the run
	// instead of holding the location forever.
	c.run = jobrun.New(jobrun.Kind{Owner: v1beta1.KindRepository, Component: v1beta1.ComponentMaintenance, Annotation: v1beta1.AnnotationMaintenance,
		ReleaseStopped: true, Placed: true}, jobrun.Config{PendingTimeout: m.PendingTimeout, WaitRequeue: m.WaitRequeue},
		c.kube, m.Gate, jobInf.Lister(), podInf.Lister(), c.queue)
	c.synced = append(c.synced, internal.WatchOwnedJobs(c.queue, owned, v1beta1.AnnotationMaintenance)...)
	return c
}

// Run waits for the caches and processes the queue until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) error {
	return internal.Run(ctx, "repository", c.queue, c.synced, workers, c.sync)
}

func (c *Controller) enqueue(obj any) {
	if key, ok := internal.KeyOf(obj); ok {
		c.queue.Add(key)
	}
}

// invokerBatch is how long a change of a Repository's users waits before
// the Repository is synced: the changes of that second are then one sync.
// Each sync looks at all of its users, so 5,000 configurations created at
// once made 5,000 back-to-back syncs of 5,000 users each; what they change
// (status.references and referenceCount) may lag by a second.
const invokerBatch = time.Second

// onInvoker re-queues, after invokerBatch, the Repository a
// BackupConfiguration or RestoreSession references. (Session results, which
// decide the backup status, re-queue it at once: onSessionResult.)
func (c *Controller) onInvoker(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if vals, _ := index.ByRepository.Func(obj); len(vals) == 1 {
		c.queue.AddAfter(vals[0], invokerBatch)
	}
}

func (c *Controller) event(r *v1beta1.Repository, typ, reason, msg string) {
	if c.recorder != nil {
		c.recorder.Event(r, typ, reason, msg)
	}
}

// sync reconciles one Repository; it is idempotent.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	cached, found, err := internal.Lookup(key, func(ns, name string) (*v1beta1.Repository, error) {
		return c.repos.Repositories(ns).Get(name)
	})
	if !found {
		c.writes.Forget(key)
		return 0, err
	}
	if c.writes.Stale(key, cached.ResourceVersion) {
		return internal.StaleRequeue, nil
	}
	ns, name := cached.Namespace, cached.Name
	repo := cached.DeepCopy()
	client := c.stow.StowV1beta1().Repositories(ns)
	if repo.DeletionTimestamp != nil {
		if !slices.Contains(repo.Finalizers, v1beta1.Finalizer) {
			return 0, nil
		}
		if repo.Spec.WipeOut {
			done, requeue, err := c.wipeOut(ctx, repo)
			if err != nil || !done {
				return requeue, err
			}
		}
		internal.RemoveFinalizer(repo, v1beta1.Finalizer)
		// The maintenance metrics go with the Repository; a failure is an
		// Event, the deletion goes on (a stale group is removed by hand).
		if err := c.pusher.DeleteInvokerGroup(ctx, v1beta1.KindRepository, repo.Namespace, repo.Name); err != nil {
			c.event(repo, corev1.EventTypeWarning, internal.ReasonMetricsFailed, "Deleting the repository's metrics group failed: "+err.Error())
		}
		if err := internal.PatchFinalizers(repo, func(pt types.PatchType, data []byte) error {
			_, err := client.Patch(ctx, repo.Name, pt, data, metav1.PatchOptions{})
			return err
		}); err != nil && !apierrors.IsNotFound(err) {
			return 0, fmt.Errorf("remove finalizer of repository %s: %v", key, err)
		}
		return 0, nil
	}
	if internal.AddFinalizer(repo, v1beta1.Finalizer) {
		updated, err := client.Patch(ctx, repo.Name, types.MergePatchType, internal.FinalizerPatch(repo), metav1.PatchOptions{})
		if err != nil {
			return 0, fmt.Errorf("add finalizer to repository %s: %v", key, err)
		}
		c.writes.Replaced(key, cached.ResourceVersion)
		repo = updated
	}

	valid := cond(v1beta1.ResourceValidationPassed, v1beta1.ConditionTrue, "the spec is valid")
	if errs := v1beta1.ValidateRepository(repo); len(errs) > 0 {
		valid = cond(v1beta1.ResourceValidationFailed, v1beta1.ConditionFalse, errs.ToAggregate().Error())
		if old := v1beta1.GetCondition(repo.Status.Conditions, v1beta1.ValidationPassed); old == nil || old.Message != valid.Message {
			c.event(repo, corev1.EventTypeWarning, internal.ReasonInvalidSpec, valid.Message)
		}
	}
	if valid.Status == v1beta1.ConditionTrue {
		if why := c.guard.Check(ctx, podguard.Object{Resource: podpolicy.Repositories, Obj: repo}); why != "" {
			valid = cond(v1beta1.ResourceValidationFailed, v1beta1.ConditionFalse, why)
			if old := v1beta1.GetCondition(repo.Status.Conditions, v1beta1.ValidationPassed); old == nil || old.Message != why {
				c.event(repo, corev1.EventTypeWarning, internal.ReasonInvalidSpec, why)
			}
		}
	}
	refs := c.references(repo)
	sessions := c.backupSessions(repo)
	backend := repo.Spec.Backend.Provider()
	now := metav1.NewTime(c.now())
	var maint outcome
	if c.maint != nil && valid.Status == v1beta1.ConditionTrue {
		if maint, err = c.maintain(ctx, repo, sessions, now.Time); err != nil {
			return 0, err
		}
	}

	mutate := func(r *v1beta1.Repository) bool {
		changed := false
		v := valid
		v.ObservedGeneration = r.Generation
		changed = v1beta1.SetCondition(&r.Status.Conditions, v, now) || changed
		if r.Status.Backend != backend {
			r.Status.Backend, changed = backend, true
		}
		listed := refs[:min(len(refs), v1beta1.MaxStatusReferences)]
		if !slices.Equal(r.Status.References, listed) {
			r.Status.References, changed = listed, true
		}
		if r.Status.ReferenceCount != int32(len(refs)) {
			r.Status.ReferenceCount, changed = int32(len(refs)), true
		}
		if r.Status.ObservedGeneration != r.Generation {
			r.Status.ObservedGeneration, changed = r.Generation, true
		}
		// The sessions first: a maintenance result of this sync is newer.
		changed = fromSessions(&r.Status, sessions) || changed
		return maint.apply(&r.Status, now) || changed
	}
	err = internal.UpdateStatus(c.writes, repo.DeepCopy(),
		func() (*v1beta1.Repository, error) { return client.Get(ctx, name, metav1.GetOptions{}) },
		mutate,
		func(r *v1beta1.Repository) error {
			_, err := client.UpdateStatus(ctx, r, metav1.UpdateOptions{})
			return err
		})
	if err != nil {
		return 0, fmt.Errorf("update status of repository %s: %v", key, err)
	}
	return maint.requeue, nil
}

func cond(reason string, st v1beta1.ConditionStatus, msg string) v1beta1.Condition {
	return v1beta1.Condition{Type: v1beta1.ValidationPassed, Status: st, Reason: reason, Message: msg}
}

// references lists, sorted, the live BackupConfigurations and RestoreSessions
// (in any namespace) that reference repo.
// This controller alone writes them, from its listers: a thousand
// configurations of one Repository would otherwise race on that one object.
func (c *Controller) references(repo *v1beta1.Repository) []v1beta1.InvokerReference {
	key := repo.Namespace + "/" + repo.Name
	var refs []v1beta1.InvokerReference
	for _, bc := range index.Lookup[*v1beta1.BackupConfiguration](c.bcInformer, index.ByRepository, key) {
		if bc.DeletionTimestamp == nil {
			refs = append(refs, v1beta1.InvokerReference{Kind: v1beta1.KindBackupConfiguration, Namespace: bc.Namespace, Name: bc.Name})
		}
	}
	for _, rs := range index.Lookup[*v1beta1.RestoreSession](c.rsInformer, index.ByRepository, key) {
		if rs.DeletionTimestamp == nil {
			refs = append(refs, v1beta1.InvokerReference{Kind: v1beta1.KindRestoreSession, Namespace: rs.Namespace, Name: rs.Name})
		}
	}
	internal.SortReferences(refs)
	return refs
}

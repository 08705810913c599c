// Package restoresession runs RestoreSessions: it defaults and validates
// them, checks the Repository, its Secret and the target, pauses the backups
// of the target while it runs, creates the PVCs and restore Jobs one at a time
// when the Repository is free, watches them so a restore never hangs, reads
// each host's result from termination messages, and finalizes the session.
package restoresession

import (
	"context"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/client/clientset/versioned"
	"github.com/stowhq/stow/client/informers/externalversions"
	stowlisters "github.com/stowhq/stow/client/listers/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/executor"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/controller/jobrun"
	"github.com/stowhq/stow/pkg/controller/podguard"
	"github.com/stowhq/stow/pkg/jobenv"
	"github.com/stowhq/stow/pkg/metrics"
)

// JobsBuilder builds the restore Jobs (one per ordinal) and the PVCs to
// create first; the operator wires it to resolve.RestoreJobs. resolved are
// the snapshots a restore without selecting rules restores, found in the
// target's Snapshot records (nil: the runner finds them).
type JobsBuilder func(rs *v1beta1.RestoreSession, repo *v1beta1.Repository, task *v1beta1.Task,
	fns map[string]*v1beta1.Function, resolved []jobenv.ResolvedSnapshot) ([]*batchv1.Job, []*corev1.PersistentVolumeClaim, error)

// Config tunes the controller.
type Config struct {
	// BuildJobs resolves the Task into Jobs (required).
	BuildJobs JobsBuilder
	// PendingTimeout is how long a Job's pod may stay Pending (default 5m).
	PendingTimeout time.Duration
	// WaitRequeue is how often a waiting session is re-examined (default 5s).
	WaitRequeue time.Duration
	// Clock is injected by tests; nil means the real clock.
	Clock clock.Clock
	// Guard checks pod settings (nil: no check); a session whose Job would
	// ask for them unchecked is Invalid.
	Guard *podguard.Guard
}

// Controller reconciles RestoreSessions.
type Controller struct {
	kube     kubernetes.Interface
	stow     versioned.Interface
	recorder record.EventRecorder
	pusher   metrics.SessionPusher
	run      *jobrun.Runner
	cfg      Config
	clock    clock.Clock

	restores stowlisters.RestoreSessionLister
	sessions stowlisters.BackupSessionLister
	bcs      stowlisters.BackupConfigurationLister
	repos    stowlisters.RepositoryLister
	tasks    stowlisters.TaskLister
	fns      stowlisters.FunctionLister

	synced []cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
}

// NewController builds the controller; see backupsession.NewController for
// what kubeInformers and gate must be.
func NewController(kube kubernetes.Interface, stow versioned.Interface, kubeInformers informers.SharedInformerFactory,
	stowInformers externalversions.SharedInformerFactory, recorder record.EventRecorder, pusher metrics.SessionPusher,
	gate *executor.Gate, cfg Config) *Controller {
	jc := jobrun.Config{PendingTimeout: cfg.PendingTimeout, WaitRequeue: cfg.WaitRequeue}.WithDefaults()
	cfg.PendingTimeout, cfg.WaitRequeue = jc.PendingTimeout, jc.WaitRequeue
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if pusher == nil {
		pusher = metrics.Nop{}
	}
	si := stowInformers.Stow().V1beta1()
	c := &Controller{
		kube: kube, stow: stow, recorder: recorder, pusher: pusher, cfg: cfg, clock: cfg.Clock,
		restores: si.RestoreSessions().Lister(),
		sessions: si.BackupSessions().Lister(),
		bcs:      si.BackupConfigurations().Lister(),
		repos:    si.Repositories().Lister(),
		tasks:    si.Tasks().Lister(),
		fns:      si.Functions().Lister(),
		queue:    internal.NewQueue("restoresession"),
	}
	c.run = jobrun.New(jobrun.Kind{Owner: v1beta1.KindRestoreSession, Component: v1beta1.ComponentRestore, Annotation: v1beta1.AnnotationRestoreSession},
		jc, kube, gate,
		kubeInformers.Batch().V1().Jobs().Lister(), kubeInformers.Core().V1().Pods().Lister(), c.queue)
	c.synced = append([]cache.InformerSynced{internal.WatchSessions(c.queue, si.RestoreSessions().Informer())},
		internal.WatchOwnedJobs(c.queue, kubeInformers, v1beta1.AnnotationRestoreSession)...)
	c.synced = append(c.synced, si.BackupSessions().Informer().HasSynced, si.BackupConfigurations().Informer().HasSynced,
		si.Repositories().Informer().HasSynced, si.Tasks().Informer().HasSynced, si.Functions().Informer().HasSynced)
	return c
}

// Run starts workers and blocks until ctx is done; the queue is shut down on return.
func (c *Controller) Run(ctx context.Context, workers int) error {
	return internal.Run(ctx, "restoresession", c.queue, c.synced, workers, c.sync)
}

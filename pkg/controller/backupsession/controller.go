// Package backupsession runs BackupSessions: it decides whether a session
// runs or is skipped, creates its backup Job when the Repository and the
// target are free, watches the Job and its pod so that a session never hangs,
// turns the steps' termination messages into session and Repository status,
// and finalizes the session (history cleanup, metrics, retry).
package backupsession

import (
	"context"
	"time"

	batchv1 "k8s.io/api/batch/v1"
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
	"github.com/stowhq/stow/pkg/metrics"
)

// JobBuilder builds the backup Job of a session; the operator wires it to
// resolve.BackupJob with its resolve.Options.
type JobBuilder func(bc *v1beta1.BackupConfiguration, s *v1beta1.BackupSession, repo *v1beta1.Repository,
	task *v1beta1.Task, fns map[string]*v1beta1.Function) (*batchv1.Job, error)

// Config tunes the controller.
type Config struct {
	// BuildJob resolves the Task into a Job (required).
	BuildJob JobBuilder
	// PendingTimeout is how long a Job's pod may stay Pending before the
	// session fails (default 5m).
	PendingTimeout time.Duration
	// WaitRequeue is how often a session waiting for its Repository or
	// target is re-examined (default 5s).
	WaitRequeue time.Duration
	// Clock is injected by tests; nil means the real clock.
	Clock clock.Clock
	// Guard checks pod settings again right before the Job is made (nil:
	// no check); the BackupConfiguration's own check makes it Invalid.
	Guard *podguard.Guard
}

// Controller reconciles BackupSessions.
type Controller struct {
	kube     kubernetes.Interface
	stow     versioned.Interface
	recorder record.EventRecorder
	pusher   metrics.SessionPusher
	run      *jobrun.Runner
	cfg      Config
	clock    clock.Clock

	sessions stowlisters.BackupSessionLister
	bcs      stowlisters.BackupConfigurationLister
	repos    stowlisters.RepositoryLister
	tasks    stowlisters.TaskLister
	fns      stowlisters.FunctionLister
	restores stowlisters.RestoreSessionLister

	synced []cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
}

// NewController builds the controller. kubeInformers should be filtered to
// Stow's objects (label app.kubernetes.io/managed-by=stow.dev): only Jobs and
// Pods are read from it. gate must be shared with the RestoreSession controller.
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
		sessions: si.BackupSessions().Lister(),
		bcs:      si.BackupConfigurations().Lister(),
		repos:    si.Repositories().Lister(),
		tasks:    si.Tasks().Lister(),
		fns:      si.Functions().Lister(),
		restores: si.RestoreSessions().Lister(),
		queue:    internal.NewQueue("backupsession"),
	}
	c.run = jobrun.New(jobrun.Kind{Owner: v1beta1.KindBackupSession, Component: v1beta1.ComponentBackup, Annotation: v1beta1.AnnotationBackupSession},
		jc, kube, gate,
		kubeInformers.Batch().V1().Jobs().Lister(), kubeInformers.Core().V1().Pods().Lister(), c.queue)
	// A restore that ends resumes paused configurations; sessions waiting on
	// it are re-examined by their periodic requeue.
	c.synced = append([]cache.InformerSynced{internal.WatchSessions(c.queue, si.BackupSessions().Informer())},
		internal.WatchOwnedJobs(c.queue, kubeInformers, v1beta1.AnnotationBackupSession)...)
	c.synced = append(c.synced, si.BackupConfigurations().Informer().HasSynced, si.Repositories().Informer().HasSynced,
		si.Tasks().Informer().HasSynced, si.Functions().Informer().HasSynced, si.RestoreSessions().Informer().HasSynced)
	return c
}

// Run starts workers and blocks until ctx is done; the queue is shut down on return.
func (c *Controller) Run(ctx context.Context, workers int) error {
	return internal.Run(ctx, "backupsession", c.queue, c.synced, workers, c.sync)
}

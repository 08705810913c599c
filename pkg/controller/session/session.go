// Package session holds what the BackupSession and RestoreSession
// controllers share besides their Jobs (pkg/controller/jobrun) and hooks
// (pkg/controller/hookrun): the clients,
// the listers of the Stow objects a session reads, the queue and its event
// handlers, and the work loop. Each controller embeds a Base and keeps only
// what differs: when a session runs or waits, what its results mean, its
// metrics and its phase.
package session

import (
	"context"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/stowhq/stow/client/clientset/versioned"
	"github.com/stowhq/stow/client/informers/externalversions"
	stowlisters "github.com/stowhq/stow/client/listers/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/executor"
	"github.com/stowhq/stow/pkg/controller/hookrun"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/controller/jobrun"
	"github.com/stowhq/stow/pkg/controller/podguard"
	"github.com/stowhq/stow/pkg/metrics"
)

// Base is the common part of a session controller.
type Base struct {
	Kube     kubernetes.Interface
	Stow     versioned.Interface
	Recorder record.EventRecorder
	Pusher   metrics.SessionPusher
	Clock    clock.Clock
	// Jobs runs the sessions' Jobs.
	Jobs *jobrun.Runner
	// Hooks runs the sessions' pre and post hooks (docs/hooks.md).
	Hooks *hookrun.Runner
	Queue workqueue.TypedRateLimitingInterface[string]
	// Writes holds back a sync whose cache has not seen the controller's
	// own last write of that session (internal.OwnWrites).
	Writes *internal.OwnWrites

	BackupSessions       stowlisters.BackupSessionLister
	RestoreSessions      stowlisters.RestoreSessionLister
	BackupConfigurations stowlisters.BackupConfigurationLister
	Repositories         stowlisters.RepositoryLister
	Tasks                stowlisters.TaskLister
	Functions            stowlisters.FunctionLister

	name   string
	sync   internal.SyncFunc
	synced []cache.InformerSynced
}

// Config tunes a session controller: what the BackupSession and
// RestoreSession controllers' Configs have in common.
type Config struct {
	// PendingTimeout is how long a Job's pod may stay Pending before the
	// session fails (default 5m).
	PendingTimeout time.Duration
	// WaitRequeue is how often a session waiting for its Repository or
	// target is re-examined (default 5s).
	WaitRequeue time.Duration
	// Clock is injected by tests; nil means the real clock.
	Clock clock.Clock
	// Guard checks pod settings again right before a Job is made (nil: no
	// check).
	Guard *podguard.Guard
	// Hooks configures the pre and post hooks (docs/hooks.md).
	Hooks hookrun.Config
}

// Deps are what a session controller uses of the process: its clients,
// informer factories, event recorder, metrics pusher (nil pushes nothing)
// and gate. KubeInformers must be filtered to Stow's objects (label
// app.kubernetes.io/managed-by=stow.dev): only Jobs and pods are read from
// it. Gate must be the one gate of the process.
type Deps struct {
	Kube          kubernetes.Interface
	Stow          versioned.Interface
	KubeInformers informers.SharedInformerFactory
	StowInformers externalversions.SharedInformerFactory
	Recorder      record.EventRecorder
	Pusher        metrics.SessionPusher
	Gate          *executor.Gate
}

// Options are what New needs to know of the controller it wires.
type Options struct {
	// Name names the controller and its queue.
	Name string
	// Kind says whose Jobs these are.
	Kind jobrun.Kind
	// Sessions is the informer of the controller's own session kind.
	Sessions cache.SharedIndexInformer
	// Sync reconciles one session; Run calls it for each key.
	Sync internal.SyncFunc
}

// New wires a session controller, after filling in cfg's defaults: its
// queue receives a session that is added or changed and the session named on
// a Job or pod of Stow's that changes.
func New(o Options, cfg *Config, d Deps) *Base {
	jobCfg := jobrun.Config{PendingTimeout: cfg.PendingTimeout, WaitRequeue: cfg.WaitRequeue}.WithDefaults()
	cfg.PendingTimeout, cfg.WaitRequeue = jobCfg.PendingTimeout, jobCfg.WaitRequeue
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	pusher := d.Pusher
	if pusher == nil {
		pusher = metrics.Nop{}
	}
	kube, stow, kubeInformers, recorder := d.Kube, d.Stow, d.KubeInformers, d.Recorder
	si := d.StowInformers.Stow().V1beta1()
	b := &Base{
		Kube: kube, Stow: stow, Recorder: recorder, Pusher: pusher, Clock: cfg.Clock,
		Queue:                internal.NewQueue(o.Name),
		Writes:               internal.NewOwnWrites(cfg.Clock),
		BackupSessions:       si.BackupSessions().Lister(),
		RestoreSessions:      si.RestoreSessions().Lister(),
		BackupConfigurations: si.BackupConfigurations().Lister(),
		Repositories:         si.Repositories().Lister(),
		Tasks:                si.Tasks().Lister(),
		Functions:            si.Functions().Lister(),
		name:                 o.Name,
		sync:                 o.Sync,
	}
	jobs, pods := kubeInformers.Batch().V1().Jobs().Lister(), kubeInformers.Core().V1().Pods().Lister()
	b.Jobs = jobrun.New(o.Kind, jobCfg, kube, d.Gate, jobs, pods, b.Queue)
	b.Hooks = hookrun.New(hookrun.Kind{Owner: o.Kind.Owner, Annotation: o.Kind.Annotation}, cfg.Hooks, kube, jobs, pods, b.Queue, recorder)
	b.synced = append([]cache.InformerSynced{internal.WatchSessions(b.Queue, o.Sessions)},
		internal.WatchOwnedJobs(b.Queue, kubeInformers, o.Kind.Annotation)...)
	for _, inf := range []cache.SharedIndexInformer{si.BackupSessions().Informer(), si.RestoreSessions().Informer(),
		si.BackupConfigurations().Informer(), si.Repositories().Informer(), si.Tasks().Informer(), si.Functions().Informer()} {
		b.synced = append(b.synced, inf.HasSynced)
	}
	return b
}

// Run starts workers that process the queue with the controller's sync and
// blocks until ctx is done; the queue is shut down on return.
func (b *Base) Run(ctx context.Context, workers int) error {
	return internal.Run(ctx, b.name, b.Queue, b.synced, workers, b.sync)
}

// Package restoresession runs RestoreSessions: it defaults and validates
// them, checks the Repository, its Secret and the target, pauses the backups
// of the target while it runs, creates the PVCs and restore Jobs one at a time
// when the Repository is free, watches them so a restore never hangs, reads
// each host's result from termination messages, and finalizes the session.
package restoresession

import (
	"context"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/client/clientset/versioned"
	"github.com/stowhq/stow/client/informers/externalversions"
	"github.com/stowhq/stow/pkg/controller/executor"
	"github.com/stowhq/stow/pkg/controller/jobrun"
	"github.com/stowhq/stow/pkg/controller/session"
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
	// Config's Guard makes a session whose Job would ask for pod settings
	// unchecked Invalid.
	session.Config
}

// Controller reconciles RestoreSessions.
type Controller struct {
	*session.Base
	cfg Config
}

// NewController builds the controller; see session.New for what
// kubeInformers and gate must be.
func NewController(kube kubernetes.Interface, stow versioned.Interface, kubeInformers informers.SharedInformerFactory,
	stowInformers externalversions.SharedInformerFactory, recorder record.EventRecorder, pusher metrics.SessionPusher,
	gate *executor.Gate, cfg Config) *Controller {
	base := session.New(session.Options{Name: "restoresession",
		Kind:     jobrun.Kind{Owner: v1beta1.KindRestoreSession, Component: v1beta1.ComponentRestore, Annotation: v1beta1.AnnotationRestoreSession, Placed: true},
		Sessions: stowInformers.Stow().V1beta1().RestoreSessions().Informer()},
		&cfg.Config, kube, stow, kubeInformers, stowInformers, recorder, pusher, gate)
	return &Controller{Base: base, cfg: cfg}
}

// Run starts workers and blocks until ctx is done; the queue is shut down on return.
func (c *Controller) Run(ctx context.Context, workers int) error {
	return c.Base.Run(ctx, workers, c.sync)
}

// Package backupsession runs BackupSessions: it decides whether a session
// runs or is skipped, creates its backup Job when the Repository and the
// target are free, watches the Job and its pod so that a session never hangs,
// turns the steps' termination messages into session and Repository status,
// and finalizes the session (history cleanup, metrics, retry).
package backupsession

import (
	"context"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/client/clientset/versioned"
	"github.com/stowhq/stow/client/informers/externalversions"
	"github.com/stowhq/stow/pkg/controller/executor"
	"github.com/stowhq/stow/pkg/controller/jobrun"
	"github.com/stowhq/stow/pkg/controller/session"
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
	// Config's Guard checks the pod settings again right before the Job is
	// made; the BackupConfiguration's own check makes it Invalid.
	session.Config
}

// Controller reconciles BackupSessions.
type Controller struct {
	*session.Base
	cfg Config
}

// NewController builds the controller; see session.New for what
// kubeInformers and gate must be.
func NewController(kube kubernetes.Interface, stow versioned.Interface, kubeInformers informers.SharedInformerFactory,
	stowInformers externalversions.SharedInformerFactory, recorder record.EventRecorder, pusher metrics.SessionPusher,
	gate *executor.Gate, cfg Config) *Controller {
	base := session.New(session.Options{Name: "backupsession",
		Kind:     jobrun.Kind{Owner: v1beta1.KindBackupSession, Component: v1beta1.ComponentBackup, Annotation: v1beta1.AnnotationBackupSession, Placed: true},
		Sessions: stowInformers.Stow().V1beta1().BackupSessions().Informer()},
		&cfg.Config, kube, stow, kubeInformers, stowInformers, recorder, pusher, gate)
	return &Controller{Base: base, cfg: cfg}
}

// Run starts workers and blocks until ctx is done; the queue is shut down on return.
func (c *Controller) Run(ctx context.Context, workers int) error {
	return c.Base.Run(ctx, workers, c.sync)
}

// Package backupsession runs BackupSessions: it decides whether a session
// runs or is skipped, creates its backup Job when the Repository and the
// target are free, watches the Job and its pod so that a session never hangs,
// turns the steps' termination messages into session status and Snapshot
// records, and finalizes the session (history cleanup, metrics, retry). The
// configuration's and the Repository's status follow from the session's:
// their controllers derive them.
package backupsession

import (
	batchv1 "k8s.io/api/batch/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/jobrun"
	"github.com/stowhq/stow/pkg/controller/session"
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

// NewController builds the controller; see session.Deps for what d must be.
func NewController(d session.Deps, cfg Config) *Controller {
	c := &Controller{cfg: cfg}
	c.Base = session.New(session.Options{Name: "backupsession", Sync: c.sync,
		Kind:     jobrun.Kind{Owner: v1beta1.KindBackupSession, Component: v1beta1.ComponentBackup, Annotation: v1beta1.AnnotationBackupSession, Placed: true},
		Sessions: d.StowInformers.Stow().V1beta1().BackupSessions().Informer()},
		&c.cfg.Config, d)
	return c
}

// Package restoresession runs RestoreSessions: it defaults and validates
// them, checks the Repository, its Secret and the target, pauses the backups
// of the target while it runs, creates the PVCs and restore Jobs one at a time
// when the Repository is free, watches them so a restore never hangs, reads
// each host's result from termination messages, and finalizes the session.
package restoresession

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/jobrun"
	"github.com/stowhq/stow/pkg/controller/session"
	"github.com/stowhq/stow/pkg/jobenv"
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

// NewController builds the controller; see session.Deps for what d must be.
func NewController(d session.Deps, cfg Config) *Controller {
	c := &Controller{cfg: cfg}
	c.Base = session.New(session.Options{Name: "restoresession", Sync: c.sync,
		Kind:     jobrun.Kind{Owner: v1beta1.KindRestoreSession, Component: v1beta1.ComponentRestore, Annotation: v1beta1.AnnotationRestoreSession, Placed: true},
		Sessions: d.StowInformers.Stow().V1beta1().RestoreSessions().Informer()},
		&c.cfg.Config, d)
	return c
}

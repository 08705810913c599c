package backupsession

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/executor"
	"github.com/stowhq/stow/pkg/controller/internal"
	"github.com/stowhq/stow/pkg/jobresult"
	"github.com/stowhq/stow/pkg/names"
)

// watch is the watchdog of a started session: it reads the Job and its pod
// and turns what it sees into target stats and session conditions, or into
// BackupDisrupted when the Job cannot report.
func (c *Controller) watch(ctx context.Context, s *v1beta1.BackupSession, bc *v1beta1.BackupConfiguration, repo *v1beta1.Repository, now time.Time) (requeueAfter time.Duration, err error) {
	t := &s.Status.Targets[0]
	obs, recheck, err := c.Jobs.Watch(ctx, s, names.BackupJob(s.Name), now)
	if err != nil {
		return 0, err
	}
	switch obs.State {
	case executor.Pending:
		return internal.Sooner(recheck, obs.RecheckAfter), nil
	case executor.PendingTooLong, executor.CannotStart, executor.Deleted:
		c.disrupt(s, t, obs.Reason, obs.Message, now)
	case executor.Succeeded, executor.Failed:
		return 0, c.applyResults(ctx, s, bc, repo, obs, now)
	}
	return recheck, nil
}

func (c *Controller) disrupt(s *v1beta1.BackupSession, t *v1beta1.BackupTargetStatus, reason, msg string, now time.Time) {
	setTargetCond(t, v1beta1.BackupDisrupted, v1beta1.ConditionTrue, reason, msg, now)
	c.Recorder.Event(s, corev1.EventTypeWarning, EventDisrupted, msg)
}

// merged is what all steps of one backup Job reported together.
type merged struct {
	jobresult.Result
	backupReported bool   // a backup step (not update-status) wrote a result
	backupErr      string // first error of a backup step
	statusErr      string // error of the update-status step
}

// merge folds step results in container order: later non-empty fields win.
func merge(results []jobresult.Result) merged {
	var m merged
	for _, r := range results {
		if r.Step == v1beta1.FunctionUpdateStatus && !r.StashOutput {
			if r.Error != "" && m.statusErr == "" {
				m.statusErr = r.Error
			}
		} else {
			m.backupReported = true
			if r.Error != "" && m.backupErr == "" {
				m.backupErr = r.Error
			}
		}
		if r.Host != "" {
			m.Host = r.Host
		}
		if r.Duration != "" {
			m.Duration = r.Duration
		}
		if len(r.Snapshots) > 0 {
			m.Snapshots = r.Snapshots
		}
		if r.RepositoryInitialized != nil {
			m.RepositoryInitialized = r.RepositoryInitialized
		}
		if r.Retention != nil {
			m.Retention = r.Retention
		}
		if r.Integrity != nil {
			m.Integrity = r.Integrity
		}
		if r.TotalSize != "" {
			m.TotalSize = r.TotalSize
		}
		if r.RepositorySnapshots != nil {
			m.RepositorySnapshots = r.RepositorySnapshots
		}
		m.StaleLocksRemoved += r.StaleLocksRemoved
	}
	return m
}

// applyResults writes host stats and post-backup conditions from the steps'
// results, and records the snapshots taken.
func (c *Controller) applyResults(ctx context.Context, s *v1beta1.BackupSession, bc *v1beta1.BackupConfiguration, repo *v1beta1.Repository, obs executor.Observation, now time.Time) error {
	m := merge(obs.Results)
	t := &s.Status.Targets[0]
	set := func(typ string, ok bool, trueReason, falseReason, trueMsg, falseMsg string) {
		if ok {
			c.setCond(s, typ, v1beta1.ConditionTrue, trueReason, trueMsg, now)
		} else {
			c.setCond(s, typ, v1beta1.ConditionFalse, falseReason, falseMsg, now)
		}
	}
	if m.RepositoryInitialized != nil {
		set(v1beta1.BackendRepositoryInitialized, *m.RepositoryInitialized, v1beta1.BackendRepositoryFound,
			v1beta1.FailedToInitializeBackendRepository, "the repository exists", m.backupErr)
	}
	if m.Retention != nil {
		set(v1beta1.RetentionPolicyApplied, m.Retention.Error == "", v1beta1.SuccessfullyAppliedRetentionPolicy, v1beta1.FailedToApplyRetentionPolicy,
			v1beta1.RetentionAppliedMessage(m.Retention.SnapshotsKept, m.Retention.SnapshotsRemoved), m.Retention.Error)
	}
	if m.Integrity != nil {
		set(v1beta1.RepositoryIntegrityVerified, *m.Integrity, v1beta1.SuccessfullyVerifiedRepositoryIntegrity,
			v1beta1.FailedToVerifyRepositoryIntegrity, "restic check found no errors", nonEmpty(m.statusErr, "restic check found errors"))
	}
	if m.Retention != nil || m.Integrity != nil || m.TotalSize != "" || m.RepositorySnapshots != nil {
		// The operator pushes what the Job measured, under the configuration's
		// own labels and group (pkg/metrics/results.go): a failed check sets
		// integrity 0 like a passed one sets 1. A failed push is a False
		// condition, not a failed host.
		if err := c.Pusher.BackupRepositoryResult(ctx, bc, repo, m.Result); err != nil {
			set(v1beta1.RepositoryMetricsPushed, false, "", v1beta1.FailedToPushRepositoryMetrics, "", err.Error())
		} else {
			set(v1beta1.RepositoryMetricsPushed, true, v1beta1.SuccessfullyPushedRepositoryMetrics, "", "repository metrics pushed", "")
		}
	}
	// An update-status failure already explained by a False condition is not
	// a host failure; anything else that failed is.
	explained := v1beta1.IsConditionFalse(s.Status.Conditions, v1beta1.RetentionPolicyApplied) ||
		v1beta1.IsConditionFalse(s.Status.Conditions, v1beta1.RepositoryIntegrityVerified) ||
		v1beta1.IsConditionFalse(s.Status.Conditions, v1beta1.RepositoryMetricsPushed)
	hostErr := m.backupErr
	if hostErr == "" && m.statusErr != "" && !explained {
		hostErr = m.statusErr
	}
	if obs.State == executor.Failed && hostErr == "" && !explained {
		hostErr = obs.Message
	}
	if obs.State == executor.Succeeded && !m.backupReported && hostErr == "" {
		hostErr = "the backup Job completed but its backup step reported no result"
	}
	host := m.Host
	if host == "" {
		host = v1beta1.Host(bc.Spec.Target.Alias)
	}
	stats := v1beta1.HostBackupStats{Hostname: host, Phase: v1beta1.HostSucceeded, Snapshots: m.Snapshots, Duration: m.Duration}
	if hostErr != "" {
		stats.Phase, stats.Error = v1beta1.HostFailed, hostErr
	}
	t.SetHostStats(stats)
	if stats.Phase == v1beta1.HostSucceeded {
		c.Recorder.Eventf(s, corev1.EventTypeNormal, EventHostBackupSucceeded, "Backup of host %s succeeded (%d snapshots)", host, len(m.Snapshots))
	} else {
		c.Recorder.Eventf(s, corev1.EventTypeWarning, EventHostBackupFailed, "Backup of host %s failed: %s", host, hostErr)
	}
	if m.StaleLocksRemoved > 0 {
		c.Recorder.Eventf(s, corev1.EventTypeNormal, "StaleLocksRemoved", "Removed %d stale restic locks", m.StaleLocksRemoved)
	}
	// The configuration's and the Repository's status follow from the
	// session's (their controllers derive them); the records are the
	// session's own.
	return c.recordSnapshots(ctx, s, bc, m, now)
}

func nonEmpty(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

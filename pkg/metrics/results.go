package metrics

import (
	"time"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/jobresult"
)

// Host and repository families. The operator pushes them, from what it read
// of a Job (its containers' termination messages, recorded in the session's
// status) and with labels and a group taken from the objects it reconciles.
// Jobs push nothing: a Task parameter, a Function's own code or a Job that
// died cannot choose, spoof or leave stale another invoker's (or its own)
// host and repository series.

// addBackupHost adds the host families of one host's backup. On failure only
// stash_backup_host_backup_success=0 is set, so the other host gauges keep
// describing the last successful backup.
func addBackupHost(b batch, hl labels, h v1beta1.HostBackupStats) {
	ok := h.Phase == v1beta1.HostSucceeded
	b.gauge(BackupHostSuccess, hl, boolGauge(ok))
	if !ok {
		return
	}
	if d, err := parseSeconds(h.Duration); err == nil {
		b.gauge(BackupHostDuration, hl, d)
	}
	var size, uploaded, processing, total, added, modified, unmodified float64
	for _, s := range h.Snapshots {
		size += sizeOrZero(s.TotalSize)
		uploaded += sizeOrZero(s.Uploaded)
		if v, err := parseSeconds(s.ProcessingTime); err == nil {
			processing += v
		}
		total += count(s.FileStats.TotalFiles)
		added += count(s.FileStats.NewFiles)
		modified += count(s.FileStats.ModifiedFiles)
		unmodified += count(s.FileStats.UnmodifiedFiles)
	}
	b.gauge(BackupHostDataSize, hl, size)
	b.gauge(BackupHostDataUploaded, hl, uploaded)
	b.gauge(BackupHostProcessingTime, hl, processing)
	b.gauge(BackupHostFilesTotal, hl, total)
	b.gauge(BackupHostFilesNew, hl, added)
	b.gauge(BackupHostFilesModified, hl, modified)
	b.gauge(BackupHostFilesUnmod, hl, unmodified)
}

// addRestoreHost adds the host families of one host's restore.
func addRestoreHost(b batch, hl labels, h v1beta1.HostRestoreStats) {
	ok := h.Phase == v1beta1.HostSucceeded
	b.gauge(RestoreHostSuccess, hl, boolGauge(ok))
	if ok {
		if d, err := parseSeconds(h.Duration); err == nil {
			b.gauge(RestoreHostDuration, hl, d)
		}
	}
}

// addRepository adds the repository families r measured. Only what was
// measured is set: a family nobody measured keeps its previous value rather
// than dropping to 0, but a check that failed sets integrity 0. tl are the
// labels of the invoker's target (its retention's scope), nil for none.
func addRepository(b batch, il labels, repo *v1beta1.Repository, repoName, repoNamespace string, tl labels, r jobresult.Result, now time.Time) {
	backend, bucket, prefix := backendLabels(repo)
	rl := merge(il, repositoryLabels(repoName, repoNamespace, backend, bucket, prefix))
	if r.Integrity != nil {
		b.gauge(RepositoryIntegrity, rl, boolGauge(*r.Integrity))
		b.gauge(RepositoryIntegrityCheckTime, rl, unix(now))
	}
	if r.TotalSize != "" {
		if v, err := ParseSize(r.TotalSize); err == nil {
			b.gauge(RepositorySize, rl, v)
		}
	}
	if r.RepositorySnapshots != nil {
		b.gauge(RepositorySnapshotCount, rl, float64(*r.RepositorySnapshots))
	}
	if rt := r.Retention; rt != nil && rt.Error == "" {
		b.gauge(RepositorySnapshotCleaned, rl, float64(rt.SnapshotsRemoved))
		if tl != nil {
			// The invoker's own snapshots of its target.
			b.gauge(BackupTargetSnapshotCount, merge(il, tl), float64(rt.SnapshotsKept))
		}
	}
}

// backendLabels are the backend, bucket and prefix labels of a repository
// (Stash's; the container for azure and swift, the path for local: its
// v1beta1.BackendLocation).
func backendLabels(repo *v1beta1.Repository) (backend, bucket, prefix string) {
	if repo == nil {
		return "", "", ""
	}
	loc := repo.Spec.Backend.Location()
	return loc.Provider, loc.Bucket, loc.Prefix
}

func sizeOrZero(s string) float64 {
	if v, err := ParseSize(s); err == nil {
		return v
	}
	return 0
}

func count(p *int64) float64 {
	if p == nil {
		return 0
	}
	return float64(*p)
}

package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/jobresult"
)

// JobLabels identify what a Job's metrics are about.
type JobLabels struct {
	InvokerKind, InvokerName, Namespace string // invoker
	Repository, RepositoryNamespace     string // repository name and namespace
	TargetKind, TargetName              string // target
	Host                                string // restic host
	Backend, Bucket, Prefix             string // repository backend
}

func (l JobLabels) job() string { return invokerJob(l.InvokerKind, l.Namespace, l.InvokerName) }

func (l JobLabels) invoker() labels {
	return invokerLabels(l.InvokerKind, l.InvokerName, l.Namespace, v1beta1.ResticDriver, l.Repository)
}

// target: Stow's targets are PVCs (core group), so the group label is "".
func (l JobLabels) target() labels {
	return targetLabels(v1beta1.TargetRef{Kind: l.TargetKind, Name: l.TargetName})
}

func (l JobLabels) check() error {
	if l.InvokerKind == "" || l.InvokerName == "" || l.Namespace == "" {
		return fmt.Errorf("push metrics: invoker kind, name and namespace are required")
	}
	return nil
}

// hostSeries checks l and returns the labels of the host families; the host
// is l.Host, else the one the step reported.
func (l JobLabels) hostSeries(r jobresult.Result) (labels, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	host := l.Host
	if host == "" {
		host = r.Host
	}
	return merge(l.invoker(), l.target(), hostLabels(host)), nil
}

// PushBackupHost pushes the host backup families for one backup step result.
// On failure only stash_backup_host_backup_success=0 is pushed, so the other
// host gauges keep describing the last successful backup.
func PushBackupHost(ctx context.Context, url string, l JobLabels, r jobresult.Result) error {
	hl, err := l.hostSeries(r)
	if err != nil {
		return err
	}
	b := batch{}
	ok := r.Error == ""
	b.gauge(BackupHostSuccess, hl, boolGauge(ok))
	if ok {
		if d, err := parseSeconds(r.Duration); err == nil {
			b.gauge(BackupHostDuration, hl, d)
		}
		var size, uploaded, processing, total, added, modified, unmodified float64
		for _, s := range r.Snapshots {
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
	return add(ctx, url, l.job(), b)
}

// PushRepository pushes the repository families after retention and check.
// Only what the step learnt is pushed: a family it could not measure keeps
// its previous value rather than dropping to 0.
func PushRepository(ctx context.Context, url string, l JobLabels, r jobresult.Result) error {
	if err := l.check(); err != nil {
		return err
	}
	ns := l.RepositoryNamespace
	if ns == "" {
		ns = l.Namespace
	}
	rl := merge(l.invoker(), repositoryLabels(l.Repository, ns, l.Backend, l.Bucket, l.Prefix))
	b := batch{}
	if r.Integrity != nil {
		b.gauge(RepositoryIntegrity, rl, boolGauge(*r.Integrity))
		b.gauge(RepositoryIntegrityCheckTime, rl, unix(jobNow()))
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
		// The invoker's own snapshots of its target (its retention's scope).
		b.gauge(BackupTargetSnapshotCount, merge(l.invoker(), l.target()), float64(rt.SnapshotsKept))
	}
	return add(ctx, url, l.job(), b)
}

// PushRestoreHost pushes the host restore families for one restore result.
func PushRestoreHost(ctx context.Context, url string, l JobLabels, r jobresult.Result) error {
	hl, err := l.hostSeries(r)
	if err != nil {
		return err
	}
	b := batch{}
	ok := r.Error == ""
	b.gauge(RestoreHostSuccess, hl, boolGauge(ok))
	if ok {
		if d, err := parseSeconds(r.Duration); err == nil {
			b.gauge(RestoreHostDuration, hl, d)
		}
	}
	return add(ctx, url, l.job(), b)
}

// jobNow is the Job's clock; tests replace it.
var jobNow = time.Now

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

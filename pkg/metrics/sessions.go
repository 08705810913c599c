package metrics

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/jobresult"
)

// SessionPusher is what the controllers need from metrics: push the session
// and target families when a session ends (or is skipped), and drop an
// invoker's Pushgateway group when the invoker is deleted. Implementations
// push to the embedded Pushgateway or to an external one.
type SessionPusher interface {
	// BackupSessionFinished pushes session, target and host metrics of a
	// finished session. succeeded must be the session's final phase ==
	// Succeeded, so the success gauge and the phase always agree. Every host
	// in the targets' stats gets its result; a target that did not succeed
	// and has no host result (its Job died, never started, or ran out of
	// time) gets host success 0 for the host it backs up.
	BackupSessionFinished(ctx context.Context, bc *v1beta1.BackupConfiguration, repo *v1beta1.Repository, s *v1beta1.BackupSession, succeeded bool) error
	// BackupSessionSkipped counts a skipped session for the invoker.
	BackupSessionSkipped(ctx context.Context, bc *v1beta1.BackupConfiguration, repo *v1beta1.Repository, s *v1beta1.BackupSession) error
	// RestoreSessionFinished pushes restore session, target and host metrics.
	RestoreSessionFinished(ctx context.Context, rs *v1beta1.RestoreSession, repo *v1beta1.Repository, succeeded bool) error
	// BackupRepositoryResult pushes the repository families a backup Job of
	// bc measured (retention, and integrity when it checked), in bc's group.
	BackupRepositoryResult(ctx context.Context, bc *v1beta1.BackupConfiguration, repo *v1beta1.Repository, r jobresult.Result) error
	// MaintenanceResult pushes what a maintenance Job of repo measured
	// (integrity, size, snapshot count), in the Repository's own group.
	MaintenanceResult(ctx context.Context, repo *v1beta1.Repository, r jobresult.Result) error
	// DeleteInvokerGroup deletes the group job=<lower(kind)>-<namespace>.<name>
	// (kind Repository for a Repository's maintenance metrics).
	DeleteInvokerGroup(ctx context.Context, kind, namespace, name string) error
}

// Nop is a SessionPusher that does nothing; for tests and --metrics-enabled=false.
type Nop struct{}

func (Nop) BackupSessionFinished(context.Context, *v1beta1.BackupConfiguration, *v1beta1.Repository, *v1beta1.BackupSession, bool) error {
	return nil
}
func (Nop) BackupSessionSkipped(context.Context, *v1beta1.BackupConfiguration, *v1beta1.Repository, *v1beta1.BackupSession) error {
	return nil
}
func (Nop) RestoreSessionFinished(context.Context, *v1beta1.RestoreSession, *v1beta1.Repository, bool) error {
	return nil
}
func (Nop) BackupRepositoryResult(context.Context, *v1beta1.BackupConfiguration, *v1beta1.Repository, jobresult.Result) error {
	return nil
}
func (Nop) MaintenanceResult(context.Context, *v1beta1.Repository, jobresult.Result) error {
	return nil
}
func (Nop) DeleteInvokerGroup(context.Context, string, string, string) error { return nil }

// NewPusher returns a SessionPusher that pushes over HTTP to the Pushgateway
// at url (the embedded one or an external one), with POST ("Add") semantics
// to the group job=<lower(kind)>-<namespace>.<name> and no other grouping
// labels (Stash's groups, with a dot between namespace and name, which a
// namespace cannot hold, so two invokers never share one).
//
// What it pushes, and how it differs from Stash:
//   - stash_backup_session_success is the final phase (the caller's succeeded).
//   - On failure only the *_success gauges (0) are pushed, so
//     *_last_success_time_seconds keeps its value for "time since last
//     success" alerts.
//   - A skipped session sets the gauge stash_backup_session_skipped=1 and
//     stash_backup_session_last_skipped_time_seconds=now; the next session
//     that runs sets stash_backup_session_skipped=0. (A gauge rather than a
//     counter: a counter kept in the operator would reset on restart, and a
//     Pushgateway group cannot increment.)
//   - stash_backup_schedule_interval_seconds is pushed with every backup
//     session push so alerts can compare the last success age to it.
//   - Target families carry the target labels (kind, group, name).
//   - Host and repository families, which Stash's Jobs pushed, are pushed
//     here too, from the results the operator read (see results.go).
func NewPusher(url string) SessionPusher {
	return &httpPusher{url: url, client: httpClient, now: time.Now}
}

// NewPusherWithToken is NewPusher for the embedded Pushgateway, whose pushes
// carry its ServerOptions.PushToken.
func NewPusherWithToken(url, token string) SessionPusher {
	return &httpPusher{url: url, client: tokenClient(token), now: time.Now}
}

type httpPusher struct {
	url    string
	client *http.Client
	now    func() time.Time
}

func (p *httpPusher) BackupSessionFinished(ctx context.Context, bc *v1beta1.BackupConfiguration, repo *v1beta1.Repository, s *v1beta1.BackupSession, succeeded bool) error {
	if s == nil {
		return fmt.Errorf("push backup session metrics: no session")
	}
	kind, ns, name := backupInvoker(bc, s)
	now := p.now()
	il := backupInvokerLabels(bc, repo, s)
	b := batch{}
	b.gauge(BackupSessionSuccess, il, boolGauge(succeeded))
	b.gauge(BackupSessionSkipped, il, 0)
	if iv, ok := scheduleInterval(bc, now); ok {
		b.gauge(BackupScheduleInterval, il, iv)
	}
	targets := s.Status.Targets
	if len(targets) == 0 && bc != nil && bc.Spec.Target != nil {
		// Failed before the target was recorded (e.g. deadline while Pending):
		// still report it, with its labels, as failed.
		targets = []v1beta1.BackupTargetStatus{{Ref: bc.Spec.Target.Ref}}
	}
	if succeeded {
		b.gauge(BackupSessionDuration, il, sessionSeconds(s.Status.SessionDuration, s.CreationTimestamp.Time, now))
		b.gauge(BackupTargetCount, il, float64(len(targets)))
		b.gauge(BackupLastSuccessTime, il, unix(now))
	}
	for _, t := range targets {
		tl := merge(il, targetLabels(t.Ref))
		ok := succeeded && t.Phase == v1beta1.TargetSucceeded
		b.gauge(BackupTargetSuccess, tl, boolGauge(ok))
		for _, h := range t.Stats {
			addBackupHost(b, merge(tl, hostLabels(h.Hostname)), h)
		}
		if len(t.Stats) == 0 && t.Phase != v1beta1.TargetSucceeded {
			addBackupHost(b, merge(tl, hostLabels(backupHost(bc))), v1beta1.HostBackupStats{Phase: v1beta1.HostFailed})
		}
		if ok {
			hosts := 1.0
			if t.TotalHosts != nil {
				hosts = float64(*t.TotalHosts)
			}
			b.gauge(BackupTargetHostCount, tl, hosts)
			b.gauge(BackupTargetLastSuccessTime, tl, unix(now))
		}
	}
	return add(ctx, p.client, p.url, invokerJob(kind, ns, name), b)
}

func (p *httpPusher) BackupSessionSkipped(ctx context.Context, bc *v1beta1.BackupConfiguration, repo *v1beta1.Repository, s *v1beta1.BackupSession) error {
	if s == nil {
		return fmt.Errorf("push skipped session metrics: no session")
	}
	kind, ns, name := backupInvoker(bc, s)
	now := p.now()
	il := backupInvokerLabels(bc, repo, s)
	b := batch{}
	b.gauge(BackupSessionSkipped, il, 1)
	b.gauge(BackupSessionLastSkippedTime, il, unix(now))
	if iv, ok := scheduleInterval(bc, now); ok {
		b.gauge(BackupScheduleInterval, il, iv)
	}
	return add(ctx, p.client, p.url, invokerJob(kind, ns, name), b)
}

func (p *httpPusher) RestoreSessionFinished(ctx context.Context, rs *v1beta1.RestoreSession, repo *v1beta1.Repository, succeeded bool) error {
	if rs == nil {
		return fmt.Errorf("push restore session metrics: no restore session")
	}
	now := p.now()
	repoName := rs.Spec.Repository.Name
	if repoName == "" && repo != nil {
		repoName = repo.Name
	}
	il := invokerLabels(v1beta1.KindRestoreSession, rs.Name, rs.Namespace, rs.Spec.Driver, repoName)
	var ref v1beta1.TargetRef
	if rs.Spec.Target != nil {
		ref = rs.Spec.Target.Ref
	}
	tl := merge(il, targetLabels(ref))
	b := batch{}
	b.gauge(RestoreSessionSuccess, il, boolGauge(succeeded))
	b.gauge(RestoreTargetSuccess, tl, boolGauge(succeeded))
	for _, h := range rs.Status.Stats {
		addRestoreHost(b, merge(tl, hostLabels(h.Hostname)), h)
	}
	if len(rs.Status.Stats) == 0 && !succeeded {
		host := ""
		if rs.Spec.Target != nil {
			host = rs.Spec.Target.Alias
		}
		addRestoreHost(b, merge(tl, hostLabels(v1beta1.Host(host))), v1beta1.HostRestoreStats{Phase: v1beta1.HostFailed})
	}
	if succeeded {
		b.gauge(RestoreSessionDuration, il, sessionSeconds(rs.Status.SessionDuration, rs.CreationTimestamp.Time, now))
		b.gauge(RestoreTargetCount, il, 1)
		hosts := 1.0
		if rs.Status.TotalHosts != nil {
			hosts = float64(*rs.Status.TotalHosts)
		}
		b.gauge(RestoreTargetHostCount, tl, hosts)
	}
	return add(ctx, p.client, p.url, invokerJob(v1beta1.KindRestoreSession, rs.Namespace, rs.Name), b)
}

func (p *httpPusher) BackupRepositoryResult(ctx context.Context, bc *v1beta1.BackupConfiguration, repo *v1beta1.Repository, r jobresult.Result) error {
	if bc == nil {
		return fmt.Errorf("push repository metrics: no BackupConfiguration")
	}
	il := invokerLabels(v1beta1.KindBackupConfiguration, bc.Name, bc.Namespace, bc.Spec.Driver, bc.Spec.Repository.Name)
	var tl labels
	if bc.Spec.Target != nil {
		tl = targetLabels(bc.Spec.Target.Ref)
	}
	repoNS := bc.Spec.Repository.Namespace
	if repoNS == "" {
		repoNS = bc.Namespace
	}
	b := batch{}
	addRepository(b, il, repo, bc.Spec.Repository.Name, repoNS, tl, r, p.now())
	return add(ctx, p.client, p.url, invokerJob(v1beta1.KindBackupConfiguration, bc.Namespace, bc.Name), b)
}

func (p *httpPusher) MaintenanceResult(ctx context.Context, repo *v1beta1.Repository, r jobresult.Result) error {
	if repo == nil {
		return fmt.Errorf("push repository metrics: no Repository")
	}
	il := invokerLabels(v1beta1.KindRepository, repo.Name, repo.Namespace, v1beta1.ResticDriver, repo.Name)
	b := batch{}
	addRepository(b, il, repo, repo.Name, repo.Namespace, nil, r, p.now())
	return add(ctx, p.client, p.url, invokerJob(v1beta1.KindRepository, repo.Namespace, repo.Name), b)
}

func (p *httpPusher) DeleteInvokerGroup(ctx context.Context, kind, namespace, name string) error {
	return deleteGroup(ctx, p.client, p.url, invokerJob(kind, namespace, name))
}

// backupHost is the restic host of bc's target (its alias, else host-0).
func backupHost(bc *v1beta1.BackupConfiguration) string {
	if bc != nil && bc.Spec.Target != nil {
		return v1beta1.Host(bc.Spec.Target.Alias)
	}
	return v1beta1.DefaultHost
}

// backupInvoker names a session's invoker even when the BackupConfiguration
// is already gone.
func backupInvoker(bc *v1beta1.BackupConfiguration, s *v1beta1.BackupSession) (kind, namespace, name string) {
	if bc != nil {
		return v1beta1.KindBackupConfiguration, bc.Namespace, bc.Name
	}
	return v1beta1.KindBackupConfiguration, s.Namespace, s.Spec.Invoker.Name
}

func backupInvokerLabels(bc *v1beta1.BackupConfiguration, repo *v1beta1.Repository, s *v1beta1.BackupSession) labels {
	kind, ns, name := backupInvoker(bc, s)
	var driver v1beta1.Driver
	repoName := ""
	if bc != nil {
		driver, repoName = bc.Spec.Driver, bc.Spec.Repository.Name
	}
	if repoName == "" && repo != nil {
		repoName = repo.Name
	}
	return invokerLabels(kind, name, ns, driver, repoName)
}

// scheduleInterval is the time between two runs of bc's schedule after now.
func scheduleInterval(bc *v1beta1.BackupConfiguration, now time.Time) (float64, bool) {
	if bc == nil {
		return 0, false
	}
	sched := bc.Status.Schedule
	if sched == "" {
		sched = v1beta1.ResolveSchedule(bc.Namespace, bc.Name, bc.Spec.Schedule)
	}
	parsed, err := v1beta1.ParseSchedule(sched)
	if err != nil {
		return 0, false
	}
	iv := v1beta1.ScheduleInterval(parsed, now)
	if iv <= 0 {
		return 0, false
	}
	return iv.Seconds(), true
}

// sessionSeconds is the recorded session duration, or the time since the
// session was created when none was recorded.
func sessionSeconds(recorded string, created, now time.Time) float64 {
	if v, err := parseSeconds(recorded); err == nil {
		return v
	}
	if created.IsZero() || now.Before(created) {
		return 0
	}
	return now.Sub(created).Seconds()
}

func unix(t time.Time) float64 { return float64(t.Unix()) }

// Package metrics holds everything Stow knows about Prometheus: the metric
// families pushed for sessions (Stash's legacy stash_* names, so existing
// dashboards and alerts keep working), the push client used by the operator
// and by Jobs, the Pushgateway embedded in the operator, and the operator's
// own metrics (workqueues, reconciles, sessions by phase).
package metrics

import (
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// Pushed metric families. Only Stash's legacy names are pushed: a second copy
// under stash_appscode_com_* would double every series for no reader's gain.
const (
	// Backup session (operator; invoker labels).
	BackupSessionSuccess         = "stash_backup_session_success"
	BackupSessionDuration        = "stash_backup_session_duration_seconds"
	BackupTargetCount            = "stash_backup_target_count_total"
	BackupLastSuccessTime        = "stash_backup_last_success_time_seconds"
	BackupSessionSkipped         = "stash_backup_session_skipped"
	BackupSessionLastSkippedTime = "stash_backup_session_last_skipped_time_seconds"
	BackupScheduleInterval       = "stash_backup_schedule_interval_seconds"

	// Backup target (operator; invoker + target labels).
	BackupTargetSuccess         = "stash_backup_target_success"
	BackupTargetHostCount       = "stash_backup_target_host_count_total"
	BackupTargetLastSuccessTime = "stash_backup_target_last_success_time_seconds"
	// Not in Stash: snapshots of the target taken by the invoker, kept after
	// its last retention (a shared repository holds others' too).
	BackupTargetSnapshotCount = "stash_backup_target_snapshot_count"

	// Backup host (backup Job; invoker + target + hostname labels).
	BackupHostSuccess        = "stash_backup_host_backup_success"
	BackupHostDuration       = "stash_backup_host_backup_duration_seconds"
	BackupHostDataSize       = "stash_backup_host_data_size_bytes"
	BackupHostDataUploaded   = "stash_backup_host_data_uploaded_bytes"
	BackupHostProcessingTime = "stash_backup_host_data_processing_time_seconds"
	BackupHostFilesTotal     = "stash_backup_host_files_total"
	BackupHostFilesNew       = "stash_backup_host_files_new"
	BackupHostFilesModified  = "stash_backup_host_files_modified"
	BackupHostFilesUnmod     = "stash_backup_host_files_unmodified"

	// Repository (backup Job; invoker + repository labels).
	RepositoryIntegrity       = "stash_repository_integrity"
	RepositorySize            = "stash_repository_size_bytes"
	RepositorySnapshotCount   = "stash_repository_snapshot_count"
	RepositorySnapshotCleaned = "stash_repository_snapshot_cleaned"
	// Not in Stash: when the integrity gauge was last measured, so an alert
	// can tell a stale result from a fresh one.
	RepositoryIntegrityCheckTime = "stash_repository_integrity_last_check_time_seconds"

	// Restore session (operator; invoker labels).
	RestoreSessionSuccess  = "stash_restore_session_success"
	RestoreSessionDuration = "stash_restore_session_duration_seconds"
	RestoreTargetCount     = "stash_restore_target_count_total"

	// Restore target (operator; invoker + target labels).
	RestoreTargetSuccess   = "stash_restore_target_success"
	RestoreTargetHostCount = "stash_restore_target_host_count_total"

	// Restore host (restore Job; invoker + target + hostname labels).
	RestoreHostSuccess  = "stash_restore_host_restore_success"
	RestoreHostDuration = "stash_restore_host_restore_duration_seconds"
)

// help is the one HELP string of each pushed family. The Pushgateway rejects
// a push whose HELP differs from what another group holds, so every pusher
// (operator and Jobs, old and new versions) must use these.
var help = map[string]string{
	BackupSessionSuccess:         "1 if the last backup session of the invoker succeeded (its final phase is Succeeded), else 0.",
	BackupSessionDuration:        "Duration of the last successful backup session.",
	BackupTargetCount:            "Number of targets of the last successful backup session.",
	BackupLastSuccessTime:        "Unix time of the last successful backup session.",
	BackupSessionSkipped:         "1 if the last backup session of the invoker was skipped, 0 once a session ran.",
	BackupSessionLastSkippedTime: "Unix time of the last skipped backup session.",
	BackupScheduleInterval:       "Seconds between two scheduled backups of the invoker.",

	BackupTargetSuccess:         "1 if the target succeeded in the last backup session, else 0.",
	BackupTargetHostCount:       "Number of hosts of the target in the last successful backup session.",
	BackupTargetLastSuccessTime: "Unix time of the last successful backup of the target.",
	BackupTargetSnapshotCount:   "Snapshots of the target the invoker keeps after its last retention.",

	BackupHostSuccess:        "1 if the last backup of the host succeeded, else 0.",
	BackupHostDuration:       "Duration of the last successful backup of the host.",
	BackupHostDataSize:       "Size of the data the last backup of the host covered.",
	BackupHostDataUploaded:   "Bytes uploaded by the last backup of the host.",
	BackupHostProcessingTime: "Time restic spent processing data in the last backup of the host.",
	BackupHostFilesTotal:     "Files seen by the last backup of the host.",
	BackupHostFilesNew:       "New files in the last backup of the host.",
	BackupHostFilesModified:  "Modified files in the last backup of the host.",
	BackupHostFilesUnmod:     "Unmodified files in the last backup of the host.",

	RepositoryIntegrity:          "1 if the last integrity check of the repository passed, else 0.",
	RepositorySize:               "Size of the repository in bytes.",
	RepositorySnapshotCount:      "Snapshots in the repository (every invoker's, and any not taken by Stow).",
	RepositorySnapshotCleaned:    "Snapshots the invoker's last retention removed.",
	RepositoryIntegrityCheckTime: "Unix time of the last integrity check of the repository.",

	RestoreSessionSuccess:  "1 if the restore session succeeded (its final phase is Succeeded), else 0.",
	RestoreSessionDuration: "Duration of the successful restore session.",
	RestoreTargetCount:     "Number of targets of the successful restore session.",

	RestoreTargetSuccess:   "1 if the restore target succeeded, else 0.",
	RestoreTargetHostCount: "Number of hosts of the successfully restored target.",

	RestoreHostSuccess:  "1 if the restore of the host succeeded, else 0.",
	RestoreHostDuration: "Duration of the successful restore of the host.",
}

// PushedFamilies lists every family name Stow pushes, for dashboards and tests.
func PushedFamilies() []string {
	out := make([]string, 0, len(help))
	for n := range help {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// labels is an ordered set of label pairs; later sets override earlier ones
// with the same name (the repository namespace overrides the invoker's).
type labels map[string]string

func merge(sets ...labels) labels {
	out := labels{}
	for _, s := range sets {
		for k, v := range s {
			out[k] = v
		}
	}
	return out
}

// invokerLabels are on every family.
func invokerLabels(kind, name, namespace string, driver v1beta1.Driver, repository string) labels {
	if driver == "" {
		driver = v1beta1.ResticDriver
	}
	return labels{
		"invoker_kind": kind,
		"invoker_name": name,
		"namespace":    namespace,
		"driver":       string(driver),
		"repository":   repository,
	}
}

// targetLabels are on target and host families. group is the API group of
// the target's apiVersion, "" for the core group.
func targetLabels(ref v1beta1.TargetRef) labels {
	kind := ref.Kind
	if kind == "" {
		kind = v1beta1.KindPersistentVolumeClaim
	}
	group := ""
	if i := strings.LastIndex(ref.APIVersion, "/"); i > 0 {
		group = ref.APIVersion[:i]
	}
	return labels{"kind": kind, "group": group, "name": ref.Name}
}

func hostLabels(host string) labels {
	if host == "" {
		host = v1beta1.DefaultHost
	}
	return labels{"hostname": host}
}

// repositoryLabels are added to the invoker labels on the repository
// families; bucket and prefix only when set, as Stash does.
func repositoryLabels(name, namespace, backend, bucket, prefix string) labels {
	l := labels{"name": name, "namespace": namespace, "backend": backend}
	if bucket != "" {
		l["bucket"] = bucket
	}
	if prefix != "" {
		l["prefix"] = prefix
	}
	return l
}

// batch collects gauges into metric families for one push.
type batch map[string]*dto.MetricFamily

func (b batch) gauge(name string, l labels, v float64) {
	mf, ok := b[name]
	if !ok {
		mf = &dto.MetricFamily{
			Name: proto.String(name),
			Help: proto.String(help[name]),
			Type: dto.MetricType_GAUGE.Enum(),
		}
		b[name] = mf
	}
	names := make([]string, 0, len(l))
	for k := range l {
		names = append(names, k)
	}
	sort.Strings(names)
	m := &dto.Metric{Gauge: &dto.Gauge{Value: proto.Float64(v)}}
	for _, k := range names {
		m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(k), Value: proto.String(l[k])})
	}
	mf.Metric = append(mf.Metric, m)
}

func (b batch) families() []*dto.MetricFamily {
	names := make([]string, 0, len(b))
	for n := range b {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*dto.MetricFamily, 0, len(b))
	for _, n := range names {
		out = append(out, b[n])
	}
	return out
}

func boolGauge(ok bool) float64 {
	if ok {
		return 1
	}
	return 0
}

package resolve

import (
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/interim"
	"github.com/stowhq/stow/pkg/names"
)

// Options are the operator-wide settings the resolver needs.
type Options struct {
	// Image is the runner image (operator flag), used by built-in Functions,
	// hook Jobs and the trigger CronJob.
	Image string
	// PushgatewayURL is PROMETHEUS_PUSHGATEWAY_URL; empty disables metrics pushes.
	PushgatewayURL string
	// ImagePullSecrets are added to every pod Stow creates.
	ImagePullSecrets []corev1.LocalObjectReference
	// OperatorURL is where Jobs ask whether a lock holder still runs
	// (pkg/lockholder); empty: they never remove a Stow pod's lock.
	OperatorURL string
	// LockHostPrefix starts the pod hostname of every Job pod
	// (names.LockHostPrefix of the cluster); empty: pods keep their name.
	LockHostPrefix string
	// DefaultLockWait bounds the wait for a lock of a session without
	// timeOut (DefaultLockWait when 0).
	DefaultLockWait time.Duration
}

// Variable names (the ${VAR} of Task and Function templates, as in Stash).
// Only the ones Stow computes are listed; Task step params and
// spec.task.params may add any others, but spec.task.params may not
// replace these (params.go).
const (
	VarNamespace                 = "NAMESPACE"
	VarBackupSession             = "BACKUP_SESSION"
	VarRestoreSession            = "RESTORE_SESSION"
	VarInvokerKind               = "INVOKER_KIND"
	VarInvokerName               = "INVOKER_NAME"
	VarRepositoryName            = "REPOSITORY_NAME"
	VarRepositoryNamespace       = "REPOSITORY_NAMESPACE"
	VarRepositoryProvider        = "REPOSITORY_PROVIDER"
	VarRepositoryBucket          = "REPOSITORY_BUCKET"
	VarRepositoryPrefix          = "REPOSITORY_PREFIX"
	VarRepositoryEndpoint        = "REPOSITORY_ENDPOINT"
	VarRepositoryRegion          = "REPOSITORY_REGION"
	VarRepositoryInsecureTLS     = "REPOSITORY_INSECURE_TLS"
	VarRepositorySecretName      = "REPOSITORY_SECRET_NAME"
	VarRepositorySecretNamespace = "REPOSITORY_SECRET_NAMESPACE"
	VarMaxConnections            = "MAX_CONNECTIONS"
	VarTargetKind                = "TARGET_KIND"
	VarTargetName                = "TARGET_NAME"
	VarTargetNamespace           = "TARGET_NAMESPACE"
	VarTargetPaths               = "TARGET_PATHS"
	VarTargetMountPath           = "TARGET_MOUNT_PATH"
	VarExcludePatterns           = "EXCLUDE_PATTERNS"
	VarIncludePatterns           = "INCLUDE_PATTERNS"
	VarDriverArgs                = "DRIVER_ARGS"
	VarHostname                  = "HOSTNAME"
	VarSourceHostname            = "SOURCE_HOSTNAME"
	VarRestorePaths              = "RESTORE_PATHS"
	VarRestoreSnapshots          = "RESTORE_SNAPSHOTS"
	VarTargetAppReplicas         = "TARGET_APP_REPLICAS"
	VarEnableCache               = "ENABLE_CACHE"
	VarInterimDataDir            = "INTERIM_DATA_DIR"
	VarRetentionKeepLast         = "RETENTION_KEEP_LAST"
	VarRetentionKeepHourly       = "RETENTION_KEEP_HOURLY"
	VarRetentionKeepDaily        = "RETENTION_KEEP_DAILY"
	VarRetentionKeepWeekly       = "RETENTION_KEEP_WEEKLY"
	VarRetentionKeepMonthly      = "RETENTION_KEEP_MONTHLY"
	VarRetentionKeepYearly       = "RETENTION_KEEP_YEARLY"
	VarRetentionKeepTags         = "RETENTION_KEEP_TAGS"
	VarRetentionPrune            = "RETENTION_PRUNE"
	VarRetentionDryRun           = "RETENTION_DRY_RUN"
	VarIntegrityCheck            = "INTEGRITY_CHECK"
	VarMetricsEnabled            = "METRICS_ENABLED"
	VarPushgatewayURL            = "PROMETHEUS_PUSHGATEWAY_URL"
	VarPrometheusJobName         = "PROMETHEUS_JOB_NAME"
	VarAddonImage                = "ADDON_IMAGE"
	VarStowImage                 = "STOW_IMAGE"
	VarHookType                  = "HOOK_TYPE"
)

// interimDataDir is INTERIM_DATA_DIR when no interim volume is configured.
const interimDataDir = v1beta1.TmpDirMountPath + "/stow-interim-volume/data"

// RepositoryVars are the REPOSITORY_* and MAX_CONNECTIONS variables of repo.
func RepositoryVars(repo *v1beta1.Repository) map[string]string {
	v := map[string]string{
		VarRepositoryInsecureTLS: "false",
		VarMaxConnections:        "0",
	}
	if repo == nil {
		return v
	}
	b := repo.Spec.Backend
	v[VarRepositoryName] = repo.Name
	v[VarRepositoryNamespace] = repo.Namespace
	v[VarRepositoryProvider] = b.Provider()
	v[VarRepositorySecretName] = b.StorageSecretName
	v[VarRepositorySecretNamespace] = repo.Namespace
	loc := b.Location()
	v[VarRepositoryBucket] = loc.Bucket
	if loc.Prefix != "" {
		v[VarRepositoryPrefix] = loc.Prefix
	}
	if loc.Endpoint != "" {
		v[VarRepositoryEndpoint] = loc.Endpoint
	}
	if b.S3 != nil {
		v[VarRepositoryRegion] = b.S3.Region
		v[VarRepositoryInsecureTLS] = strconv.FormatBool(b.S3.InsecureTLS)
	}
	v[VarMaxConnections] = strconv.FormatInt(loc.MaxConnections, 10)
	return v
}

// commonVars are the variables shared by backup and restore.
func commonVars(ns, kind, name string, tmp v1beta1.EmptyDirSettings, hasInterim bool, repo *v1beta1.Repository, opts Options) map[string]string {
	v := RepositoryVars(repo)
	v[VarNamespace] = ns
	v[VarInvokerKind] = kind
	v[VarInvokerName] = name
	v[VarEnableCache] = strconv.FormatBool(!tmp.DisableCaching)
	v[VarPushgatewayURL] = opts.PushgatewayURL
	v[VarMetricsEnabled] = strconv.FormatBool(opts.PushgatewayURL != "")
	v[VarPrometheusJobName] = names.PushgatewayJob(kind, ns, name)
	v[VarStowImage] = opts.Image
	// The repository's maintenance checks it on a schedule; a Task param may ask
	// for a check in every session, as Stash did.
	v[VarIntegrityCheck] = "false"
	v[VarInterimDataDir] = interimDataDir
	if hasInterim {
		v[VarInterimDataDir] = interim.DataDir
	}
	return v
}

// BackupVars returns the variables above for a backup. It does not include
// Task step params or spec.task.params: buildJob layers those (step params <
// these variables, spec.task.params naming others < ADDON_IMAGE). bc is defaulted on a copy, never modified.
func BackupVars(bc *v1beta1.BackupConfiguration, s *v1beta1.BackupSession, repo *v1beta1.Repository, opts Options) map[string]string {
	bc = bc.DeepCopy()
	v1beta1.DefaultBackupConfiguration(bc)
	ns := bc.Namespace
	if s != nil && s.Namespace != "" {
		ns = s.Namespace
	}
	v := commonVars(ns, v1beta1.KindBackupConfiguration, bc.Name, bc.Spec.TempDir, bc.Spec.InterimVolumeTemplate != nil, repo, opts)
	if s != nil {
		v[VarBackupSession] = s.Name
	}
	v[VarHostname] = v1beta1.DefaultHost
	v[VarTargetMountPath] = v1beta1.DefaultMountPath
	v[VarTargetPaths] = v1beta1.DefaultMountPath
	if t := bc.Spec.Target; t != nil {
		setTargetRef(v, t.Ref, bc.Namespace)
		mount := v1beta1.TargetMountPath(t.VolumeMounts)
		v[VarTargetMountPath] = mount
		// Defaulting already made paths follow the mount path (Stash backed up
		// the default paths whatever the mount path was).
		v[VarTargetPaths] = strings.Join(t.Paths, ",")
		if len(t.Paths) == 0 {
			v[VarTargetPaths] = mount
		}
		v[VarExcludePatterns] = strings.Join(t.Exclude, ",")
		v[VarDriverArgs] = strings.Join(t.Args, " ")
		v[VarHostname] = v1beta1.Host(t.Alias)
	}
	rp := bc.Spec.RetentionPolicy
	for name, n := range map[string]int64{
		VarRetentionKeepLast: rp.KeepLast, VarRetentionKeepHourly: rp.KeepHourly, VarRetentionKeepDaily: rp.KeepDaily,
		VarRetentionKeepWeekly: rp.KeepWeekly, VarRetentionKeepMonthly: rp.KeepMonthly, VarRetentionKeepYearly: rp.KeepYearly,
	} {
		if n > 0 {
			v[name] = strconv.FormatInt(n, 10)
		}
	}
	if len(rp.KeepTags) > 0 {
		v[VarRetentionKeepTags] = strings.Join(rp.KeepTags, ",")
	}
	v[VarRetentionPrune] = strconv.FormatBool(rp.Prune)
	v[VarRetentionDryRun] = strconv.FormatBool(rp.DryRun)
	return v
}

// RestoreVars returns the restore variables for the given matching rule (nil
// when the session has no rule for this host). It does not include Task
// step params or spec.task.params. What is restored:
//   - a rule that selects (snapshots, paths or sourceHost) keeps Stash's
//     meaning: those snapshots, the latest snapshot holding each path, or the
//     latest of every path of sourceHost; SOURCE_HOSTNAME is the rule's
//     sourceHost, else the restoring host;
//   - otherwise (no rule, or one that only filters with include/exclude) the
//     latest snapshot of this PVC by its snapshot identity (pkg/identity):
//     RESTORE_SNAPSHOTS, RESTORE_PATHS and SOURCE_HOSTNAME stay empty. In a
//     repository shared by several PVCs, "the latest of host-0" would be
//     whichever PVC was backed up last.
func RestoreVars(rs *v1beta1.RestoreSession, repo *v1beta1.Repository, rule *v1beta1.Rule, opts Options) map[string]string {
	rs = rs.DeepCopy()
	v1beta1.DefaultRestoreSession(rs)
	v := commonVars(rs.Namespace, v1beta1.KindRestoreSession, rs.Name, rs.Spec.TempDir, rs.Spec.InterimVolumeTemplate != nil, repo, opts)
	v[VarRestoreSession] = rs.Name
	v[VarHostname] = v1beta1.DefaultHost
	v[VarTargetMountPath] = v1beta1.DefaultMountPath
	v[VarTargetAppReplicas] = "1"
	if t := rs.Spec.Target; t != nil {
		setTargetRef(v, t.Ref, rs.Namespace)
		if t.Ref.Name == "" && len(t.VolumeClaimTemplates) > 0 {
			v[VarTargetName] = t.VolumeClaimTemplates[0].Name
		}
		v[VarTargetMountPath] = v1beta1.TargetMountPath(t.VolumeMounts)
		v[VarDriverArgs] = strings.Join(t.Args, " ")
		v[VarHostname] = v1beta1.Host(t.Alias)
		if t.Replicas != nil {
			v[VarTargetAppReplicas] = strconv.Itoa(int(*t.Replicas))
		}
	}
	v[VarSourceHostname] = ""
	v[VarRestoreSnapshots] = ""
	if rule != nil {
		if ruleSelects(rule) {
			v[VarSourceHostname] = v[VarHostname]
			if rule.SourceHost != "" {
				v[VarSourceHostname] = rule.SourceHost
			}
		}
		v[VarRestorePaths] = strings.Join(rule.Paths, ",")
		v[VarRestoreSnapshots] = strings.Join(rule.Snapshots, ",")
		v[VarIncludePatterns] = strings.Join(rule.Include, ",")
		v[VarExcludePatterns] = strings.Join(rule.Exclude, ",")
	}
	return v
}

// ruleSelects reports whether rule names what to restore (snapshots, paths
// or a source host); without one, a restore takes the target's own latest.
func ruleSelects(rule *v1beta1.Rule) bool {
	return rule != nil && (len(rule.Snapshots) > 0 || len(rule.Paths) > 0 || rule.SourceHost != "")
}

func setTargetRef(v map[string]string, r v1beta1.TargetRef, invokerNS string) {
	kind := r.Kind
	if kind == "" {
		kind = v1beta1.KindPersistentVolumeClaim
	}
	ns := r.Namespace
	if ns == "" {
		ns = invokerNS
	}
	v[VarTargetKind] = kind
	v[VarTargetName] = r.Name
	v[VarTargetNamespace] = ns
}

// MatchRule returns the rule of rules that applies to host: the first one
// listing it in targetHosts, else the one with empty targetHosts, else nil.
func MatchRule(rules []v1beta1.Rule, host string) *v1beta1.Rule {
	var any *v1beta1.Rule
	for i := range rules {
		r := &rules[i]
		if len(r.TargetHosts) == 0 {
			if any == nil {
				any = r
			}
			continue
		}
		for _, h := range r.TargetHosts {
			if h == host {
				return r
			}
		}
	}
	return any
}

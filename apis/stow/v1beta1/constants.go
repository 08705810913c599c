package v1beta1

// Kinds, as written in invoker references and metric labels.
const (
	KindRepository            = "Repository"
	KindBackupConfiguration   = "BackupConfiguration"
	KindBackupSession         = "BackupSession"
	KindRestoreSession        = "RestoreSession"
	KindPersistentVolumeClaim = "PersistentVolumeClaim"
	KindSnapshot              = "Snapshot"
)

// Defaults shared by the operator, the resolver and the in-Job runner.
const (
	DefaultHost            = "host-0"
	DefaultMountPath       = "/stow-data"
	TmpDirMountPath        = "/stow-tmp"
	TmpDirVolumeName       = "stow-tmp-dir"
	TargetVolumeName       = "stow-volume"
	LocalBackendVolumeName = "stow-local-backend"
	OutputDir              = "/stow-tmp/output"
	OutputFileName         = "output.json"
	DefaultBackupHistory   = int32(1)
	DefaultMaxRetry        = int32(1)
	// InterimMountPath is where a session's interim volume
	// (interimVolumeTemplate, pkg/interim) is mounted in every container
	// of its Job.
	InterimMountPath = "/stow-interim-volume"

	// Finalizer guards cleanup of CronJobs, RBAC and Repository references.
	Finalizer = "stow.dev"

	// Built-in Functions and Tasks the operator ensures at start-up.
	FunctionPVCBackup    = "pvc-backup"
	FunctionPVCRestore   = "pvc-restore"
	FunctionUpdateStatus = "update-status"
	TaskPVCBackup        = "pvc-backup"
	TaskPVCRestore       = "pvc-restore"

	// Stable randomized schedules resolved from namespace/name.
	ScheduleHourlyRandom = "@hourly-random"
	ScheduleDailyRandom  = "@daily-random"
	ScheduleWeeklyRandom = "@weekly-random"
)

// Labels Stow puts on the objects it creates; controllers select on them.
const (
	LabelComponent       = "app.kubernetes.io/component"
	LabelManagedBy       = "app.kubernetes.io/managed-by"
	ManagedByStow        = "stow.dev"
	ComponentBackup      = "stow-backup"
	ComponentRestore     = "stow-restore"
	ComponentMaintenance = "stow-maintenance"
	// ComponentInterim labels the interim volume (PVC) of a session.
	ComponentInterim = "stow-interim"
	// ComponentHook is on the hook Jobs of sessions (docs/hooks.md).
	ComponentHook        = "stow-hook"
	LabelInvokerType     = "stow.dev/invoker-type"
	LabelInvokerName     = "stow.dev/invoker-name"
	LabelTargetKind      = "stow.dev/target-kind"
	LabelTargetName      = "stow.dev/target-name"
	LabelTargetNamespace = "stow.dev/target-namespace"
	// LabelResticHost is on every backup and restore Job pod: its pod
	// hostname, which restic records in the locks the pod takes.
	LabelResticHost = "stow.dev/restic-host"
)

// Maintenance tasks of a Repository, in the order a maintenance Job runs them.
const (
	MaintenanceUnlock  = "unlock"
	MaintenancePrune   = "prune"
	MaintenanceCheck   = "check"
	MaintenanceRefresh = "refresh"
)

// MaintenanceTasks lists the maintenance tasks in the order they run.
var MaintenanceTasks = []string{MaintenanceUnlock, MaintenancePrune, MaintenanceCheck, MaintenanceRefresh}

// MaintenanceRequestAnnotation is the Repository annotation that asks for a
// maintenance task now: any value not yet answered in
// status.maintenance.<task>.request starts it (kubectl stow check, or
// kubectl annotate --overwrite ... stow.dev/check-request=$(date +%s)).
func MaintenanceRequestAnnotation(task string) string { return "stow.dev/" + task + "-request" }

// Repository condition types and reasons written by maintenance.
const (
	// MaintenanceWaiting is True while a due maintenance Job waits for the
	// repository (or a Job slot); its message names what it waits for.
	MaintenanceWaiting = "MaintenanceWaiting"
	// MaintenanceFailed is True when the last run of some task failed.
	MaintenanceFailed = "MaintenanceFailed"
	// WipeOut tells, while a Repository with wipeOut is being deleted,
	// where the deletion of its data stands: Unknown while its Job waits or
	// runs, False when the wipe is refused or failed (the message says why
	// and what to do). The finalizer stays until the data is deleted.
	WipeOut = "WipeOut"
)

// AnnotationRestoredBy marks a PVC a RestoreSession created from its
// volumeClaimTemplates with that RestoreSession's UID: a template whose name
// is taken by any other PVC is refused, never restored into.
const AnnotationRestoredBy = "stow.dev/restored-by"

// Annotations on the Jobs (and their pods) the operator creates. Session
// names can be longer than a label value may be, so these are annotations;
// the operator's event handlers read them to find the object to requeue.
const (
	// AnnotationRepository is the <namespace>/<name> of the Job's Repository.
	AnnotationRepository = "stow.dev/repository"
	// AnnotationBackupSession names the BackupSession (in the Job's
	// namespace) a backup Job belongs to.
	AnnotationBackupSession = "stow.dev/backup-session"
	// AnnotationRestoreSession names the RestoreSession (in the Job's
	// namespace) a restore Job belongs to.
	AnnotationRestoreSession = "stow.dev/restore-session"
	// AnnotationMaintenance names the Repository (in the Job's namespace) a
	// maintenance Job belongs to.
	AnnotationMaintenance = "stow.dev/repository-maintenance"
)

// AnnotationRetryOf is on a BackupSession that retries a failed one: the
// name of the failed session.
const AnnotationRetryOf = "stow.dev/retry-of"

// Labels on backup and restore Jobs and their pods, for people selecting a
// session's Jobs and pods (kubectl get pods -l ...); the operator finds
// them by the annotations above.
const (
	LabelBackupSession  = "stow.dev/backup-session"
	LabelRestoreSession = "stow.dev/restore-session"
	LabelPodOrdinal     = "stow.dev/pod-ordinal"
)

// ExecutorWaiting is a session condition that is True while the session
// cannot start its Job because someone else holds the repository or the
// target; its reason says what it waits for and its message names the
// holder. It is removed once the Job is created.
const (
	ExecutorWaiting = "ExecutorWaiting"
	// RepositoryInUse: another Job uses the repository's backend location
	// in a way this one may not share.
	RepositoryInUse = "RepositoryInUse"
	// TooManyJobs: --max-concurrent-jobs Stow Jobs run already.
	TooManyJobs = "TooManyJobs"
	// TargetInUse: a session of another BackupConfiguration backs up the
	// same PVC.
	TargetInUse = "TargetInUse"
	// WaitingForBackup: a restore waits for a backup of its target to end.
	WaitingForBackup = "WaitingForBackup"
)

// ContainerCannotStart is the reason of a session disrupted because a
// container of its Job's pod waits for something waiting cannot bring
// (CreateContainerConfigError, an invalid image name, ...).
const ContainerCannotStart = "ContainerCannotStart"

// Annotations on backup and restore Jobs: where and how the Job uses its
// repository. The operator admits Jobs per backend location by them.
const (
	// AnnotationLocation is the backend location of the Job's repository.
	AnnotationLocation = "stow.dev/location"
	// AnnotationLockMode is "shared" (backup, restore) or "exclusive"
	// (forget, prune, check: restic locks the repository exclusively).
	AnnotationLockMode = "stow.dev/lock-mode"
	// AnnotationExclusiveFrom names the container of a shared Job from
	// which on it needs the repository alone (its retention step).
	AnnotationExclusiveFrom = "stow.dev/exclusive-from"
)

// Repository provider names (REPOSITORY_PROVIDER, metric label "backend").
const (
	ProviderLocal = "local"
	ProviderS3    = "s3"
	ProviderGCS   = "gcs"
	ProviderAzure = "azure"
	ProviderSwift = "swift"
	ProviderB2    = "b2"
	ProviderRest  = "rest"
)

// Pre- and post-backup actions recorded on a session target.
const (
	InitializeBackendRepository = "InitializeBackendRepository"
	ApplyRetentionPolicy        = "ApplyRetentionPolicy"
	VerifyRepositoryIntegrity   = "VerifyRepositoryIntegrity"
	SendRepositoryMetrics       = "SendRepositoryMetrics"
)

// Invoker (BackupConfiguration, RestoreSession) condition types and reasons.
const (
	RepositoryFound                     = "RepositoryFound"
	RepositoryAvailable                 = "RepositoryAvailable"
	RepositoryNotAvailable              = "RepositoryNotAvailable"
	UnableToCheckRepositoryAvailability = "UnableToCheckRepositoryAvailability"

	BackendSecretFound                     = "BackendSecretFound"
	BackendSecretAvailable                 = "BackendSecretAvailable"
	BackendSecretNotAvailable              = "BackendSecretNotAvailable"
	UnableToCheckBackendSecretAvailability = "UnableToCheckBackendSecretAvailability"

	ValidationPassed         = "ValidationPassed"
	ResourceValidationPassed = "ResourceValidationPassed"
	ResourceValidationFailed = "ResourceValidationFailed"

	BackupTargetFound               = "BackupTargetFound"
	RestoreTargetFound              = "RestoreTargetFound"
	TargetAvailable                 = "TargetAvailable"
	TargetNotAvailable              = "TargetNotAvailable"
	UnableToCheckTargetAvailability = "UnableToCheckTargetAvailability"

	TaskFound                = "TaskFound"
	TaskAvailable            = "TaskAvailable"
	TaskNotAvailable         = "TaskNotAvailable"
	CronJobCreated           = "CronJobCreated"
	CronJobCreationSucceeded = "CronJobCreationSucceeded"
	CronJobCreationFailed    = "CronJobCreationFailed"
)

// BackupSession condition types and reasons (session level).
const (
	BackendRepositoryInitialized        = "BackendRepositoryInitialized"
	BackendRepositoryFound              = "BackendRepositoryFound"
	FailedToInitializeBackendRepository = "FailedToInitializeBackendRepository"

	RetentionPolicyApplied             = "RetentionPolicyApplied"
	SuccessfullyAppliedRetentionPolicy = "SuccessfullyAppliedRetentionPolicy"
	FailedToApplyRetentionPolicy       = "FailedToApplyRetentionPolicy"

	RepositoryIntegrityVerified             = "RepositoryIntegrityVerified"
	SuccessfullyVerifiedRepositoryIntegrity = "SuccessfullyVerifiedRepositoryIntegrity"
	FailedToVerifyRepositoryIntegrity       = "FailedToVerifyRepositoryIntegrity"

	RepositoryMetricsPushed             = "RepositoryMetricsPushed"
	SuccessfullyPushedRepositoryMetrics = "SuccessfullyPushedRepositoryMetrics"
	FailedToPushRepositoryMetrics       = "FailedToPushRepositoryMetrics"

	BackupSkipped          = "BackupSkipped"
	SkippedTakingNewBackup = "SkippedTakingNewBackup"

	BackupHistoryCleaned             = "BackupHistoryCleaned"
	SuccessfullyCleanedBackupHistory = "SuccessfullyCleanedBackupHistory"
	FailedToCleanBackupHistory       = "FailedToCleanBackupHistory"

	MetricsPushed             = "MetricsPushed"
	SuccessfullyPushedMetrics = "SuccessfullyPushedMetrics"
	FailedToPushMetrics       = "FailedToPushMetrics"

	DeadlineExceeded               = "DeadlineExceeded"
	FailedToCompleteWithinDeadline = "FailedToCompleteWithinDeadline"
)

// Target-level condition types and reasons.
const (
	BackupExecutorEnsured              = "BackupExecutorEnsured"
	SuccessfullyEnsuredBackupExecutor  = "SuccessfullyEnsuredBackupExecutor"
	FailedToEnsureBackupExecutor       = "FailedToEnsureBackupExecutor"
	RestoreExecutorEnsured             = "RestoreExecutorEnsured"
	SuccessfullyEnsuredRestoreExecutor = "SuccessfullyEnsuredRestoreExecutor"
	FailedToEnsureRestoreExecutor      = "FailedToEnsureRestoreExecutor"

	PreBackupHookExecutionSucceeded   = "PreBackupHookExecutionSucceeded"
	PostBackupHookExecutionSucceeded  = "PostBackupHookExecutionSucceeded"
	PreRestoreHookExecutionSucceeded  = "PreRestoreHookExecutionSucceeded"
	PostRestoreHookExecutionSucceeded = "PostRestoreHookExecutionSucceeded"

	SuccessfullyExecutedPreBackupHook   = "SuccessfullyExecutedPreBackupHook"
	FailedToExecutePreBackupHook        = "FailedToExecutePreBackupHook"
	SuccessfullyExecutedPostBackupHook  = "SuccessfullyExecutedPostBackupHook"
	FailedToExecutePostBackupHook       = "FailedToExecutePostBackupHook"
	SuccessfullyExecutedPreRestoreHook  = "SuccessfullyExecutedPreRestoreHook"
	FailedToExecutePreRestoreHook       = "FailedToExecutePreRestoreHook"
	SuccessfullyExecutedPostRestoreHook = "SuccessfullyExecutedPostRestoreHook"
	FailedToExecutePostRestoreHook      = "FailedToExecutePostRestoreHook"

	// BackupDisrupted (and RestoreDisrupted) is set by the executor watchdog
	// when the Job or its pod can no longer report: the target is Failed.
	BackupDisrupted                 = "BackupDisrupted"
	RestoreDisrupted                = "RestoreDisrupted"
	FailedToCompleteDueToDisruption = "FailedToCompleteDueToDisruption"

	// Watchdog reasons, more precise than the generic disruption reason.
	PodHasBeenInPendingStateForLongerThanExpected = "PodHasBeenInPendingStateForLongerThanExpected"
	ExecutorTerminatedBeforeCompletion            = "ExecutorTerminatedBeforeCompletion"
	ExecutorDeleted                               = "ExecutorDeleted"

	RestoreCompleted            = "RestoreCompleted"
	PostRestoreTasksExecuted    = "PostRestoreTasksExecuted"
	PostRestoreTasksNotExecuted = "PostRestoreTasksNotExecuted"
)

// Hook types: where a hook sits in a session (docs/hooks.md), as Stash
// spells them (HOOK_TYPE).
const (
	HookPreBackup   = "preBackup"
	HookPostBackup  = "postBackup"
	HookPreRestore  = "preRestore"
	HookPostRestore = "postRestore"
)

// AnnotationExecHooks is a pod's consent to exec hooks (docs/hooks.md): the
// BackupConfigurations and RestoreSessions of its namespace that may run
// their exec hooks in it, comma-separated, or "*" for all. The operator
// runs an exec hook only in pods that carry it, so that the author of a
// BackupConfiguration gains no power to run commands in a pod its own
// writer did not grant.
const AnnotationExecHooks = "stow.dev/exec-hooks"

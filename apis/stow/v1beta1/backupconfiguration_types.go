package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BackupConfiguration backs up one PVC into a Repository on a schedule.
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bc,categories=stow
// +kubebuilder:printcolumn:name="Task",type=string,JSONPath=`.spec.task.name`
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.status.schedule`
// +kubebuilder:printcolumn:name="Paused",type=boolean,JSONPath=`.spec.paused`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Snapshots",type=integer,JSONPath=`.status.snapshotCount`
// +kubebuilder:printcolumn:name="Last-Success",type=date,JSONPath=`.status.lastSuccessTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupConfiguration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec BackupConfigurationSpec `json:"spec"`
	// +optional
	Status BackupConfigurationStatus `json:"status,omitempty"`
}

// BackupConfigurationSpec is the desired backup of a target.
type BackupConfigurationSpec struct {
	// Schedule is a 5-field cron expression, a macro such as @daily, or one of
	// @hourly-random, @daily-random, @weekly-random: a stable time derived from
	// namespace/name, so that many configurations do not all start at once.
	// The schema checks the form (five fields or a macro); the operator
	// checks the values and reports them in the Invalid phase.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@(hourly|daily|weekly)-random|@every ([0-9]+(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h))+|[0-9A-Za-z*/,?-]+([ \t]+[0-9A-Za-z*/,?-]+){4})$`
	Schedule string `json:"schedule"`
	// TimeZone is an IANA zone name for the schedule (CronJob spec.timeZone);
	// empty means the kube-controller-manager's zone, usually UTC.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_+./-]*$`
	// +optional
	TimeZone *string `json:"timeZone,omitempty"`
	// +kubebuilder:default=Restic
	// +optional
	Driver Driver `json:"driver,omitempty"`
	// +optional
	Task       TaskRef       `json:"task,omitempty"`
	Repository ObjectRef     `json:"repository"`
	Target     *BackupTarget `json:"target"`
	// RetentionPolicy is applied with restic forget after every successful backup.
	RetentionPolicy RetentionPolicy `json:"retentionPolicy"`
	// Paused suspends the trigger CronJob. A BackupSession created by hand still runs.
	// +optional
	Paused bool `json:"paused,omitempty"`
	// BackupHistoryLimit is the number of completed BackupSessions to keep.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +optional
	BackupHistoryLimit *int32 `json:"backupHistoryLimit,omitempty"`
	// TimeOut is the deadline of one session (a Go duration such as 2h); the
	// Job is stopped when it passes.
	// +optional
	TimeOut *Duration `json:"timeOut,omitempty"`
	// +optional
	RetryConfig *RetryConfig `json:"retryConfig,omitempty"`
	// +optional
	RuntimeSettings RuntimeSettings `json:"runtimeSettings,omitempty"`
	// +optional
	TempDir EmptyDirSettings `json:"tempDir,omitempty"`
	// InterimVolumeTemplate makes a PVC for each BackupSession (spec,
	// labels and annotations from the template; named <metadata.name, or
	// stow-interim>-<session name>; owned by the session), mounted in every
	// container of its Job at /stow-interim-volume, where INTERIM_DATA_DIR
	// (/stow-interim-volume/data) points: scratch space for a Function that
	// keeps data between its steps. It is deleted when the session ends.
	// spec.resources.requests.storage is required (docs/interim-volume.md).
	// +optional
	InterimVolumeTemplate *corev1.PersistentVolumeClaim `json:"interimVolumeTemplate,omitempty"`
	// +optional
	Hooks *BackupHooks `json:"hooks,omitempty"`
}

// BackupTarget is the PVC to back up and how.
type BackupTarget struct {
	Ref TargetRef `json:"ref"`
	// Paths inside the target volume to back up; each is its own snapshot.
	// Defaults to the mount path. A path may not contain a comma (the Job
	// receives them comma-joined: one value must not hide two paths).
	// +kubebuilder:validation:items:Pattern=`^/[^,]*$`
	// +kubebuilder:validation:items:MaxLength=1024
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Paths []string `json:"paths,omitempty"`
	// Exclude holds restic --exclude patterns; a pattern may not contain a comma.
	// +optional
	Exclude []string `json:"exclude,omitempty"`
	// VolumeMounts[0].mountPath is where the PVC is mounted (default
	// /stow-data); not /stow-tmp or /stow-interim-volume, nor under them,
	// where Stow mounts its own volumes. At most MaxVolumeMounts (16).
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(m, m.mountPath != '/stow-tmp' && !m.mountPath.startsWith('/stow-tmp/') && m.mountPath != '/stow-interim-volume' && !m.mountPath.startsWith('/stow-interim-volume/'))",message="mountPath must not be /stow-tmp, /stow-interim-volume or under them: Stow mounts its scratch and interim volumes there"
	// +optional
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`
	// Alias is the restic --host of the snapshots (default host-0).
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Alias string `json:"alias,omitempty"`
	// Args are extra arguments for restic backup.
	// +optional
	Args []string `json:"args,omitempty"`
}

// RetentionPolicy maps 1:1 to restic forget flags; only values > 0 are passed.
type RetentionPolicy struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	KeepLast int64 `json:"keepLast,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	KeepHourly int64 `json:"keepHourly,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	KeepDaily int64 `json:"keepDaily,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	KeepWeekly int64 `json:"keepWeekly,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	KeepMonthly int64 `json:"keepMonthly,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	KeepYearly int64 `json:"keepYearly,omitempty"`
	// +optional
	KeepTags []string `json:"keepTags,omitempty"`
	Prune    bool     `json:"prune"`
	// +optional
	DryRun bool `json:"dryRun,omitempty"`
}

// BackupInvokerPhase is the readiness of a BackupConfiguration.
// +kubebuilder:validation:Enum=Ready;NotReady;Invalid
type BackupInvokerPhase string

const (
	BackupInvokerReady    BackupInvokerPhase = "Ready"
	BackupInvokerNotReady BackupInvokerPhase = "NotReady"
	BackupInvokerInvalid  BackupInvokerPhase = "Invalid"
)

// BackupConfigurationStatus is the operator's view of a BackupConfiguration.
type BackupConfigurationStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +optional
	Phase BackupInvokerPhase `json:"phase,omitempty"`
	// Schedule is the resolved cron expression the CronJob uses.
	// +optional
	Schedule string `json:"schedule,omitempty"`
	// +optional
	LastSuccessTime *metav1.Time `json:"lastSuccessTime,omitempty"`
	// SnapshotCount is how many snapshots of its target this configuration
	// keeps after its last retention: those tagged with its snapshot
	// identity. A shared repository holds others' too (Repository status).
	// +optional
	SnapshotCount *int64 `json:"snapshotCount,omitempty"`
	// +optional
	Conditions []Condition `json:"conditions,omitempty"`
}

// BackupConfigurationList is a list of BackupConfigurations.
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type BackupConfigurationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupConfiguration `json:"items"`
}

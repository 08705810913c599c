package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BackupSession is one backup run of a BackupConfiguration.
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bs,categories=stow
// +kubebuilder:printcolumn:name="Invoker-Type",type=string,JSONPath=`.spec.invoker.kind`
// +kubebuilder:printcolumn:name="Invoker-Name",type=string,JSONPath=`.spec.invoker.name`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Duration",type=string,JSONPath=`.status.sessionDuration`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupSession struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec BackupSessionSpec `json:"spec"`
	// +optional
	Status BackupSessionStatus `json:"status,omitempty"`
}

// BackupSessionSpec is immutable once created.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable"
type BackupSessionSpec struct {
	Invoker BackupInvokerRef `json:"invoker"`
	// RetryLeft is how many more sessions may be created if this one fails;
	// never more than the configuration's retryConfig.maxRetry.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	// +optional
	RetryLeft int32 `json:"retryLeft,omitempty"`
}

// BackupInvokerRef names the BackupConfiguration that started a session.
type BackupInvokerRef struct {
	// APIGroup is Stow's group; Stash's, which Stash's manifests carry, means
	// the same BackupConfiguration. Any other group names an invoker Stow
	// does not have, and would be read as the BackupConfiguration of the name.
	// +kubebuilder:default=stow.dev
	// +kubebuilder:validation:Enum=stow.dev;stash.appscode.com
	// +optional
	APIGroup string `json:"apiGroup,omitempty"`
	// +kubebuilder:default=BackupConfiguration
	// +kubebuilder:validation:Enum=BackupConfiguration
	// +optional
	Kind string `json:"kind,omitempty"`
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// BackupSessionPhase is where a session is in its life.
// +kubebuilder:validation:Enum=Pending;Skipped;Running;Succeeded;Failed;Unknown
type BackupSessionPhase string

const (
	BackupSessionPending   BackupSessionPhase = "Pending"
	BackupSessionSkipped   BackupSessionPhase = "Skipped"
	BackupSessionRunning   BackupSessionPhase = "Running"
	BackupSessionSucceeded BackupSessionPhase = "Succeeded"
	BackupSessionFailed    BackupSessionPhase = "Failed"
	BackupSessionUnknown   BackupSessionPhase = "Unknown"
)

// TargetPhase is the phase of one target of a session.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed;Unknown
type TargetPhase string

const (
	TargetPending   TargetPhase = "Pending"
	TargetRunning   TargetPhase = "Running"
	TargetSucceeded TargetPhase = "Succeeded"
	TargetFailed    TargetPhase = "Failed"
	TargetUnknown   TargetPhase = "Unknown"
)

// HostPhase is the phase of one host of a target.
// +kubebuilder:validation:Enum=Succeeded;Failed;Running;Unknown
type HostPhase string

const (
	HostSucceeded HostPhase = "Succeeded"
	HostFailed    HostPhase = "Failed"
	HostRunning   HostPhase = "Running"
	HostUnknown   HostPhase = "Unknown"
)

// BackupSessionStatus is written by the operator and the backup Job.
type BackupSessionStatus struct {
	// +optional
	Phase BackupSessionPhase `json:"phase,omitempty"`
	// Reason is a one-line cause when the session Failed or was Skipped.
	// +optional
	Reason string `json:"reason,omitempty"`
	// +optional
	SessionDuration string `json:"sessionDuration,omitempty"`
	// +optional
	SessionDeadline *metav1.Time `json:"sessionDeadline,omitempty"`
	// +optional
	Retried *bool `json:"retried,omitempty"`
	// +optional
	NextRetry *metav1.Time `json:"nextRetry,omitempty"`
	// +optional
	Conditions []Condition `json:"conditions,omitempty"`
	// +optional
	Targets []BackupTargetStatus `json:"targets,omitempty"`
}

// BackupTargetStatus is the progress of one target.
type BackupTargetStatus struct {
	Ref TargetRef `json:"ref"`
	// +optional
	TotalHosts *int32 `json:"totalHosts,omitempty"`
	// +optional
	Phase TargetPhase `json:"phase,omitempty"`
	// +optional
	PreBackupActions []string `json:"preBackupActions,omitempty"`
	// +optional
	PostBackupActions []string `json:"postBackupActions,omitempty"`
	// +optional
	Conditions []Condition `json:"conditions,omitempty"`
	// +optional
	Stats []HostBackupStats `json:"stats,omitempty"`
}

// HostBackupStats is the result of backing up one host.
type HostBackupStats struct {
	Hostname string `json:"hostname"`
	// +optional
	Phase HostPhase `json:"phase,omitempty"`
	// +optional
	Snapshots []SnapshotStats `json:"snapshots,omitempty"`
	// +optional
	Duration string `json:"duration,omitempty"`
	// +optional
	Error string `json:"error,omitempty"`
}

// SnapshotStats describes one snapshot taken by a backup.
type SnapshotStats struct {
	Name string `json:"name"`
	// +optional
	Path string `json:"path,omitempty"`
	// +optional
	TotalSize string `json:"totalSize,omitempty"`
	// +optional
	Uploaded string `json:"uploaded,omitempty"`
	// +optional
	ProcessingTime string `json:"processingTime,omitempty"`
	// +optional
	FileStats FileStats `json:"fileStats,omitempty"`
}

// FileStats counts the files a snapshot saw.
type FileStats struct {
	// +optional
	TotalFiles *int64 `json:"totalFiles,omitempty"`
	// +optional
	NewFiles *int64 `json:"newFiles,omitempty"`
	// +optional
	ModifiedFiles *int64 `json:"modifiedFiles,omitempty"`
	// +optional
	UnmodifiedFiles *int64 `json:"unmodifiedFiles,omitempty"`
}

// BackupSessionList is a list of BackupSessions.
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type BackupSessionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupSession `json:"items"`
}

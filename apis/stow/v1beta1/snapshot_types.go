package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Snapshot records one restic snapshot Stow took, in the namespace of the
// configuration that took it, so that `kubectl get snapshots` lists what
// can be restored without the repository's credentials. The operator
// writes it when a backup succeeds and deletes it when the configuration's
// retention forgets the snapshot; its name is the start of the snapshot id,
// which a RestoreSession rule may name (rules[].snapshots). Deleting a record
// deletes nothing in the repository.
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=snap,categories=stow
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.target.name`
// +kubebuilder:printcolumn:name="Configuration",type=string,JSONPath=`.spec.invoker.name`
// +kubebuilder:printcolumn:name="Time",type=date,JSONPath=`.spec.time`
// +kubebuilder:printcolumn:name="Host",type=string,JSONPath=`.spec.hostname`
// +kubebuilder:printcolumn:name="Size",type=string,JSONPath=`.spec.totalSize`
// +kubebuilder:printcolumn:name="Repository",type=string,JSONPath=`.spec.repository.name`,priority=1
// +kubebuilder:printcolumn:name="Paths",type=string,JSONPath=`.spec.paths`,priority=1
type Snapshot struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec SnapshotSpec `json:"spec"`
}

// MaxSnapshotPaths is how many paths a Snapshot record holds (the CRD's
// maxItems of spec.paths).
const MaxSnapshotPaths = 64

// SnapshotSpec is what restic and the session reported of the snapshot.
type SnapshotSpec struct {
	// ID is the full restic snapshot id.
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{64}$`
	ID string `json:"id"`
	// Time the snapshot was taken.
	Time metav1.Time `json:"time"`
	// Hostname is restic's --host of the snapshot.
	// +optional
	Hostname string `json:"hostname,omitempty"`
	// Paths the snapshot holds (at most MaxSnapshotPaths).
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Paths []string `json:"paths,omitempty"`
	// MountPath the target volume was mounted at when it was taken.
	// +optional
	MountPath string `json:"mountPath,omitempty"`
	// Repository the snapshot is in.
	Repository ObjectRef `json:"repository"`
	// Invoker is the configuration that took it.
	Invoker BackupInvokerRef `json:"invoker"`
	// Target is the volume it holds.
	Target TargetRef `json:"target"`
	// BackupSession that took it.
	// +optional
	BackupSession string `json:"backupSession,omitempty"`
	// TotalSize of the files the snapshot covers, formatted.
	// +optional
	TotalSize string `json:"totalSize,omitempty"`
	// TotalFiles the snapshot covers.
	// +optional
	TotalFiles *int64 `json:"totalFiles,omitempty"`
}

// SnapshotList is a list of Snapshots.
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type SnapshotList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Snapshot `json:"items"`
}

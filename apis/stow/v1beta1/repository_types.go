package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Repository is a restic repository in a backend, with the Secret that opens it.
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=repo,categories=stow
// +kubebuilder:printcolumn:name="Backend",type=string,JSONPath=`.status.backend`
// +kubebuilder:printcolumn:name="Integrity",type=boolean,JSONPath=`.status.integrity`
// +kubebuilder:printcolumn:name="Size",type=string,JSONPath=`.status.totalSize`
// +kubebuilder:printcolumn:name="Snapshot-Count",type=integer,JSONPath=`.status.snapshotCount`
// +kubebuilder:printcolumn:name="Last-Successful-Backup",type=date,JSONPath=`.status.lastBackupTime`
// +kubebuilder:printcolumn:name="Last-Check",type=date,JSONPath=`.status.maintenance.check.lastTime`,priority=1
// +kubebuilder:printcolumn:name="Last-Prune",type=date,JSONPath=`.status.maintenance.prune.lastTime`,priority=1
// +kubebuilder:printcolumn:name="Used-By",type=integer,JSONPath=`.status.referenceCount`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Repository struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec RepositorySpec `json:"spec"`
	// +optional
	Status RepositoryStatus `json:"status,omitempty"`
}

// RepositorySpec says where the repository lives and who may use it.
// +kubebuilder:validation:XValidation:rule="!(has(self.wipeOut) && self.wipeOut) || !has(self.backend.local) && !has(self.backend.b2)",message="wipeOut is not supported for local and b2 backends"
type RepositorySpec struct {
	Backend Backend `json:"backend"`
	// WipeOut deletes the repository's data at its backend when the
	// Repository is deleted: a Job (stow wipe) removes every file of the
	// restic repository under its own bucket and prefix, and nothing else;
	// the Repository's finalizer stays until it succeeded. The wipe is
	// refused (condition WipeOut, Warning Event, finalizer kept) while
	// another Repository on an overlapping location, a BackupConfiguration
	// or an unfinished RestoreSession uses it, or when the prefix is empty
	// (a whole bucket). Set it back to false to delete the Repository and
	// keep the data. Not supported for the local and b2 backends
	// (docs/maintenance.md, "Deleting a repository's data").
	// +optional
	WipeOut bool `json:"wipeOut,omitempty"`
	// +optional
	UsagePolicy *UsagePolicy `json:"usagePolicy,omitempty"`
	// Maintenance schedules the repository-wide work backup sessions do not
	// do: integrity check, prune and the size/count refresh. Each runs in a
	// Job of its own in the Repository's namespace, with the repository to
	// itself when it needs it (check, prune). Annotate the Repository with
	// stow.dev/<check|prune|refresh|unlock>-request: <any new value> to run
	// one now.
	// +optional
	Maintenance *RepositoryMaintenance `json:"maintenance,omitempty"`
}

// RepositoryMaintenance is when each maintenance task runs.
type RepositoryMaintenance struct {
	// Check verifies the repository (restic check). Default: @weekly-random.
	// +optional
	Check *CheckSchedule `json:"check,omitempty"`
	// Prune removes data no snapshot references any more (restic prune):
	// what retention forgot is freed here. Default: @weekly-random.
	// +optional
	Prune *MaintenanceSchedule `json:"prune,omitempty"`
	// Refresh measures the repository's size and counts its snapshots
	// (restic stats) for status and metrics. Default: @daily-random.
	// +optional
	Refresh *MaintenanceSchedule `json:"refresh,omitempty"`
	// Resources of the maintenance container (prune holds the index in memory).
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
}

// MaintenanceSchedule is when one maintenance task runs.
type MaintenanceSchedule struct {
	// Schedule is a 5-field cron expression, a macro such as @weekly, or
	// @hourly-random, @daily-random, @weekly-random (a stable time derived
	// from the Repository and the task). Empty: the task's default.
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^(|@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@(hourly|daily|weekly)-random|@every ([0-9]+(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h))+|[0-9A-Za-z*/,?-]+([ \t]+[0-9A-Za-z*/,?-]+){4})$`
	// +optional
	Schedule string `json:"schedule,omitempty"`
	// Suspend stops the scheduled runs; requests still run.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// CheckSchedule is when the integrity check runs and how deep it reads.
type CheckSchedule struct {
	MaintenanceSchedule `json:",inline"`
	// ReadDataSubset also reads and verifies this subset of the data
	// (restic check --read-data-subset: "n/t", "x%" or a size such as
	// "500M"). Empty: the repository's structure only.
	// +kubebuilder:validation:Pattern=`^([0-9]+/[0-9]+|[0-9]+(\.[0-9]+)?%|[0-9]+[KMGT]?)?$`
	// +optional
	ReadDataSubset string `json:"readDataSubset,omitempty"`
}

// Backend is exactly one storage provider plus the Secret holding
// RESTIC_PASSWORD and the provider's credentials.
// +kubebuilder:validation:XValidation:rule="[has(self.local), has(self.s3), has(self.gcs), has(self.azure), has(self.swift), has(self.b2), has(self.rest)].filter(x, x).size() == 1",message="exactly one backend (local, s3, gcs, azure, swift, b2, rest) must be set"
type Backend struct {
	// +kubebuilder:validation:MinLength=1
	StorageSecretName string `json:"storageSecretName"`
	// +optional
	Local *LocalSpec `json:"local,omitempty"`
	// +optional
	S3 *S3Spec `json:"s3,omitempty"`
	// +optional
	GCS *GCSSpec `json:"gcs,omitempty"`
	// +optional
	Azure *AzureSpec `json:"azure,omitempty"`
	// +optional
	Swift *SwiftSpec `json:"swift,omitempty"`
	// +optional
	B2 *B2Spec `json:"b2,omitempty"`
	// +optional
	Rest *RestServerSpec `json:"rest,omitempty"`
}

// LocalSpec keeps the repository on a volume (PVC, NFS, hostPath...) mounted
// into every Job container at mountPath.
// +kubebuilder:validation:XValidation:rule="self.mountPath != '/stow' && !self.mountPath.startsWith('/stow/')",message="mountPath must not be /stow or below it"
// +kubebuilder:validation:XValidation:rule="self.mountPath.startsWith('/')",message="mountPath must be absolute"
// +kubebuilder:validation:XValidation:rule="self.mountPath != '/' && self.mountPath != '/stow-tmp' && !self.mountPath.startsWith('/stow-tmp/') && self.mountPath != '/stow-interim-volume' && !self.mountPath.startsWith('/stow-interim-volume/')",message="mountPath must not be /, /stow-tmp, /stow-interim-volume or under them: Stow mounts its scratch and interim volumes there"
// +kubebuilder:validation:XValidation:rule="!has(self.emptyDir) && !has(self.ephemeral) && !has(self.configMap) && !has(self.secret) && !has(self.downwardAPI) && !has(self.projected)",message="emptyDir, ephemeral, configMap, secret, downwardAPI and projected volumes live only as long as one Job's pod and cannot hold a repository: every backup would write a new one, lost when its Job ends; use a persistentVolumeClaim, nfs or hostPath"
type LocalSpec struct {
	corev1.VolumeSource `json:",inline"`
	// +kubebuilder:validation:MinLength=1
	MountPath string `json:"mountPath"`
	// +optional
	SubPath string `json:"subPath,omitempty"`
}

// S3Spec is Amazon S3 or an S3-compatible store (MinIO, Rook, ...).
type S3Spec struct {
	// +kubebuilder:validation:MinLength=1
	Endpoint string `json:"endpoint"`
	// +kubebuilder:validation:MinLength=1
	Bucket string `json:"bucket"`
	// +optional
	Prefix string `json:"prefix,omitempty"`
	// +optional
	Region string `json:"region,omitempty"`
	// +optional
	InsecureTLS bool `json:"insecureTLS,omitempty"`
}

// GCSSpec is Google Cloud Storage.
type GCSSpec struct {
	// +kubebuilder:validation:MinLength=1
	Bucket string `json:"bucket"`
	// +optional
	Prefix string `json:"prefix,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxConnections int64 `json:"maxConnections,omitempty"`
}

// AzureSpec is Azure Blob Storage.
type AzureSpec struct {
	// +kubebuilder:validation:MinLength=1
	Container string `json:"container"`
	// +optional
	Prefix string `json:"prefix,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxConnections int64 `json:"maxConnections,omitempty"`
}

// SwiftSpec is OpenStack Swift.
type SwiftSpec struct {
	// +kubebuilder:validation:MinLength=1
	Container string `json:"container"`
	// +optional
	Prefix string `json:"prefix,omitempty"`
}

// B2Spec is Backblaze B2.
type B2Spec struct {
	// +kubebuilder:validation:MinLength=1
	Bucket string `json:"bucket"`
	// +optional
	Prefix string `json:"prefix,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxConnections int64 `json:"maxConnections,omitempty"`
}

// RestServerSpec is a restic REST server.
type RestServerSpec struct {
	// +kubebuilder:validation:MinLength=1
	URL string `json:"url"`
}

// FromNamespaces says which namespaces may use a Repository.
// +kubebuilder:validation:Enum=Same;All;Selector
type FromNamespaces string

const (
	NamespacesFromSame     FromNamespaces = "Same"
	NamespacesFromAll      FromNamespaces = "All"
	NamespacesFromSelector FromNamespaces = "Selector"
)

// UsagePolicy limits which namespaces may reference this Repository.
type UsagePolicy struct {
	AllowedNamespaces AllowedNamespaces `json:"allowedNamespaces"`
}

// AllowedNamespaces is Same (default), All, or those matching selector.
type AllowedNamespaces struct {
	// +kubebuilder:default=Same
	// +optional
	From FromNamespaces `json:"from,omitempty"`
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// MaxStatusReferences is how many users a Repository's status.references
// lists. Each is about 90 bytes of JSON: 5,000 configurations of one
// Repository made a 450 KB status, rewritten and sent to every watcher on
// each change, and about 16,000 would pass etcd's object size limit, so its
// status could not be written at all.
const MaxStatusReferences = 100

// RepositoryStatus is what the last backup learnt of the repository.
type RepositoryStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Backend is the provider name, for display.
	// +optional
	Backend string `json:"backend,omitempty"`
	// +optional
	FirstBackupTime *metav1.Time `json:"firstBackupTime,omitempty"`
	// +optional
	LastBackupTime *metav1.Time `json:"lastBackupTime,omitempty"`
	// +optional
	Integrity *bool `json:"integrity,omitempty"`
	// +optional
	TotalSize string `json:"totalSize,omitempty"`
	// SnapshotCount is the number of snapshots in the repository: every
	// configuration's, and any Stow did not take.
	// +optional
	SnapshotCount int64 `json:"snapshotCount,omitempty"`
	// SnapshotsRemovedOnLastCleanup is how many snapshots the last retention
	// (of one configuration's own snapshots) removed.
	// +optional
	SnapshotsRemovedOnLastCleanup int64 `json:"snapshotsRemovedOnLastCleanup,omitempty"`
	// References are the live BackupConfigurations and RestoreSessions that
	// use the Repository, sorted by kind, namespace and name: the first
	// MaxStatusReferences of them, so that the object stays small however
	// many use it. ReferenceCount counts them all.
	// +optional
	References []InvokerReference `json:"references,omitempty"`
	// ReferenceCount is how many live BackupConfigurations and
	// RestoreSessions use the Repository.
	// +optional
	ReferenceCount int32 `json:"referenceCount,omitempty"`
	// Maintenance is the last and next run of each maintenance task.
	// +optional
	Maintenance *MaintenanceStatus `json:"maintenance,omitempty"`
	// +optional
	Conditions []Condition `json:"conditions,omitempty"`
}

// MaintenanceStatus records the maintenance of a repository.
type MaintenanceStatus struct {
	// +optional
	Check *MaintenanceRun `json:"check,omitempty"`
	// +optional
	Prune *MaintenanceRun `json:"prune,omitempty"`
	// +optional
	Refresh *MaintenanceRun `json:"refresh,omitempty"`
	// +optional
	Unlock *MaintenanceRun `json:"unlock,omitempty"`
	// Job is the maintenance Job running now, if any.
	// +optional
	Job string `json:"job,omitempty"`
	// JobTasks are the tasks Job runs, comma-separated.
	// +optional
	JobTasks string `json:"jobTasks,omitempty"`
	// JobRequests are the run-now requests Job answers, task=value,
	// comma-separated.
	// +optional
	JobRequests string `json:"jobRequests,omitempty"`
}

// MaintenanceRun is the outcome of one maintenance task.
type MaintenanceRun struct {
	// LastTime is when the task last ended.
	// +optional
	LastTime *metav1.Time `json:"lastTime,omitempty"`
	// Succeeded tells whether that run succeeded.
	// +optional
	Succeeded *bool `json:"succeeded,omitempty"`
	// Message is a one-line account of that run.
	// +optional
	Message string `json:"message,omitempty"`
	// Request is the last run-now request (the annotation's value) answered.
	// +optional
	Request string `json:"request,omitempty"`
	// NextTime is when the task runs next on its schedule.
	// +optional
	NextTime *metav1.Time `json:"nextTime,omitempty"`
}

// InvokerReference names a BackupConfiguration or RestoreSession using a Repository.
type InvokerReference struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// RepositoryList is a list of Repositories.
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type RepositoryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Repository `json:"items"`
}

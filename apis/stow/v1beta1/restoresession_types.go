package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RestoreSession restores snapshots of a Repository into a PVC, once.
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=restore,categories=stow
// +kubebuilder:printcolumn:name="Repository",type=string,JSONPath=`.spec.repository.name`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Duration",type=string,JSONPath=`.status.sessionDuration`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RestoreSession struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec RestoreSessionSpec `json:"spec"`
	// +optional
	Status RestoreSessionStatus `json:"status,omitempty"`
}

// RestoreSessionSpec is immutable once created.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable"
type RestoreSessionSpec struct {
	// +kubebuilder:default=Restic
	// +optional
	Driver     Driver    `json:"driver,omitempty"`
	Repository ObjectRef `json:"repository"`
	// +optional
	Task   TaskRef        `json:"task,omitempty"`
	Target *RestoreTarget `json:"target"`
	// Rules is deprecated in Stash; use target.rules. Kept so old manifests load.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Rules []Rule `json:"rules,omitempty"`
	// +optional
	RuntimeSettings RuntimeSettings `json:"runtimeSettings,omitempty"`
	// +optional
	TempDir EmptyDirSettings `json:"tempDir,omitempty"`
	// InterimVolumeTemplate makes a PVC for the restore (spec,
	// labels and annotations from the template; named <metadata.name, or
	// stow-interim>-<session name>; owned by the session), mounted in every
	// container of its Job at /stow-interim-volume, where INTERIM_DATA_DIR
	// (/stow-interim-volume/data) points: scratch space for a Function that
	// keeps data between its steps. It is deleted when the session ends.
	// spec.resources.requests.storage is required (docs/interim-volume.md).
	// +optional
	InterimVolumeTemplate *corev1.PersistentVolumeClaim `json:"interimVolumeTemplate,omitempty"`
	// +optional
	Hooks *RestoreHooks `json:"hooks,omitempty"`
	// +optional
	TimeOut *Duration `json:"timeOut,omitempty"`
	// RestoreAsOf restores, wherever the latest snapshot would be chosen
	// (no rules, rule paths, a sourceHost, snapshots: ["latest"]), the newest
	// snapshot taken at or before this time instead, as VolSync's
	// restoreAsOf does. Snapshot ids named in a rule cannot be combined with it.
	// +optional
	RestoreAsOf *metav1.Time `json:"restoreAsOf,omitempty"`
}

// Bounds of a restore's fan-out: what one sync of a RestoreSession builds in
// the operator's memory and creates through the API (see RestoreTarget).
const (
	// MaxVolumeMounts bounds a target's volumeMounts (the target's, and
	// with volumeClaimTemplates one per template).
	MaxVolumeMounts         = 16
	MaxRestoreReplicas      = 100
	MaxVolumeClaimTemplates = 8
	// MaxRestoreFanOutBytes bounds replicas times the size of what each
	// replica's Job and PVCs are made from (the session's spec; for the
	// resolver also its Task and Functions): every replica copies it, and
	// a spec near the API server's object limit (1.5 MiB) made 100
	// replicas hold some 130 MiB at once. A spec of a few KiB is far from
	// it at 100 replicas.
	MaxRestoreFanOutBytes = 16 << 20
)

// RestoreTarget is the PVC (or new PVCs) to restore into: ref names an
// existing PVC, volumeClaimTemplates make new ones; not both.
// +kubebuilder:validation:XValidation:rule="!(has(self.ref) && has(self.ref.name) && size(self.ref.name) > 0 && has(self.volumeClaimTemplates) && size(self.volumeClaimTemplates) > 0)",message="must not be set together with spec.target.ref.name: restore either into the existing PVC that ref names, or into new PVCs made from volumeClaimTemplates",fieldPath=".volumeClaimTemplates"
type RestoreTarget struct {
	// +optional
	Ref TargetRef `json:"ref,omitempty"`
	// VolumeMounts[0].mountPath is where the PVC is mounted (default
	// /stow-data); with volumeClaimTemplates, the entry named like a
	// template is where its PVC is mounted. Not /stow-tmp or
	// /stow-interim-volume, nor under them, where Stow mounts its own volumes.
	// At most MaxVolumeMounts (16): one per template and the target.
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(m, m.mountPath != '/stow-tmp' && !m.mountPath.startsWith('/stow-tmp/') && m.mountPath != '/stow-interim-volume' && !m.mountPath.startsWith('/stow-interim-volume/'))",message="mountPath must not be /stow-tmp, /stow-interim-volume or under them: Stow mounts its scratch and interim volumes there"
	// +optional
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`
	// Rules select what to restore. With none, the latest snapshot of this
	// target's host is restored.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Rules []Rule `json:"rules,omitempty"`
	// Alias is the restoring host's identity (default host-0).
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Alias string `json:"alias,omitempty"`
	// Args are extra arguments for restic restore.
	// +optional
	Args []string `json:"args,omitempty"`
	// VolumeClaimTemplates create new PVCs to restore into; ${POD_ORDINAL} is
	// replaced by each replica ordinal. Not with ref.name. At most
	// MaxVolumeClaimTemplates (8): a StatefulSet has one or two; each is a
	// PVC, an API call, per replica.
	// +kubebuilder:validation:MaxItems=8
	// +optional
	VolumeClaimTemplates []corev1.PersistentVolumeClaim `json:"volumeClaimTemplates,omitempty"`
	// Replicas is how many ordinals (each its own PVCs, Job and host) a
	// restore into volumeClaimTemplates makes; 1 to MaxRestoreReplicas (100).
	// The operator builds every replica's Job and PVCs on each sync of the
	// session and creates the PVCs in one sync: a replica costs about 32 KiB
	// (more with a larger spec, see MaxRestoreFanOutBytes), so 100 is some
	// 3 MiB and 100 to 800 PVCs, while replicas 20,000 took 634 MiB and
	// crashed the operator (256 MiB) on every restart. 100 is well above a
	// StatefulSet restored by one RestoreSession.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
}

// Rule selects snapshots (by id or "latest") or paths (latest snapshot that
// holds each) for some hosts.
// +kubebuilder:validation:XValidation:rule="!(has(self.snapshots) && size(self.snapshots) > 0 && has(self.paths) && size(self.paths) > 0)",message="a rule may set snapshots or paths, not both"
type Rule struct {
	// TargetHosts this rule applies to; empty matches every host.
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:MaxItems=64
	// +optional
	TargetHosts []string `json:"targetHosts,omitempty"`
	// SourceHost whose snapshots are restored (default: the restoring host).
	// +kubebuilder:validation:MaxLength=253
	// +optional
	SourceHost string `json:"sourceHost,omitempty"`
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Snapshots []string `json:"snapshots,omitempty"`
	// +kubebuilder:validation:items:Pattern=`^/[^,]*$`
	// +kubebuilder:validation:items:MaxLength=1024
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Paths []string `json:"paths,omitempty"`
	// +optional
	Include []string `json:"include,omitempty"`
	// +optional
	Exclude []string `json:"exclude,omitempty"`
}

// RestorePhase is where a restore is in its life.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed;Unknown;Invalid
type RestorePhase string

const (
	RestorePending   RestorePhase = "Pending"
	RestoreRunning   RestorePhase = "Running"
	RestoreSucceeded RestorePhase = "Succeeded"
	RestoreFailed    RestorePhase = "Failed"
	RestoreUnknown   RestorePhase = "Unknown"
	RestoreInvalid   RestorePhase = "Invalid"
)

// RestoreSessionStatus is written by the operator and the restore Job.
type RestoreSessionStatus struct {
	// +optional
	Phase RestorePhase `json:"phase,omitempty"`
	// Reason is a one-line cause when the session Failed or is Invalid.
	// +optional
	Reason string `json:"reason,omitempty"`
	// +optional
	TotalHosts *int32 `json:"totalHosts,omitempty"`
	// +optional
	SessionDuration string `json:"sessionDuration,omitempty"`
	// +optional
	SessionDeadline *metav1.Time `json:"sessionDeadline,omitempty"`
	// PausedBackups are the BackupConfigurations this restore paused; they are
	// resumed when it ends.
	// +optional
	PausedBackups []string `json:"pausedBackups,omitempty"`
	// +optional
	Stats []HostRestoreStats `json:"stats,omitempty"`
	// +optional
	Conditions []Condition `json:"conditions,omitempty"`
}

// HostRestoreStats is the result of restoring one host.
type HostRestoreStats struct {
	Hostname string `json:"hostname"`
	// +optional
	Phase HostPhase `json:"phase,omitempty"`
	// +optional
	Duration string `json:"duration,omitempty"`
	// +optional
	Error string `json:"error,omitempty"`
}

// RestoreSessionList is a list of RestoreSessions.
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type RestoreSessionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RestoreSession `json:"items"`
}

package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Task is an ordered list of Functions that make up a backup or restore Job.
// Every step but the last runs as an init container; the last is the main one.
//
// +genclient
// +genclient:nonNamespaced
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=task,categories=stow
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Task struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec TaskSpec `json:"spec"`
}

// MaxTaskSteps bounds a Task's steps: each is a container of every Job
// built from it (and of every replica of a restore). Stash's Tasks have
// two to four.
const MaxTaskSteps = 32

// TaskSpec lists the steps and the pod volumes they use.
type TaskSpec struct {
	// Steps are the Job's containers, in order; at most MaxTaskSteps (32).
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Steps []FunctionRef `json:"steps"`
	// Volumes may use ${VAR} placeholders, e.g. claimName: ${TARGET_NAME}.
	// +optional
	Volumes []corev1.Volume `json:"volumes,omitempty"`
	// AllowedNamespaces restricts the namespaces whose BackupConfigurations
	// and RestoreSessions may use this Task; unset: every namespace (as the
	// built-in Tasks). Set it on a Task written for one team, above all on
	// one that mounts a node path or asks for other pod settings.
	// +optional
	AllowedNamespaces *NamespaceSelection `json:"allowedNamespaces,omitempty"`
}

// FunctionRef is one step of a Task.
type FunctionRef struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Params are the step's inputs; at most MaxParams (64).
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Params []Param `json:"params,omitempty"`
}

// TaskList is a list of Tasks.
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type TaskList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Task `json:"items"`
}

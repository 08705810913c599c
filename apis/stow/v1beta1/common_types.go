package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TargetRef names the object a backup or restore acts on. For Stow this is a
// PersistentVolumeClaim in the invoker's namespace.
type TargetRef struct {
	// +kubebuilder:default=v1
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// +kubebuilder:default=PersistentVolumeClaim
	// +kubebuilder:validation:Enum=PersistentVolumeClaim
	// +optional
	Kind string `json:"kind,omitempty"`
	// Name of the target. May be empty in a RestoreSession that restores into
	// volumeClaimTemplates.
	// +optional
	Name string `json:"name,omitempty"`
	// Namespace must be empty or equal to the invoker's namespace.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// ObjectRef names a namespaced object; an empty namespace means the referrer's.
type ObjectRef struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// NamespaceSelection selects namespaces by name or by label; a namespace
// either lists or the selector matches is selected. Both empty: none.
type NamespaceSelection struct {
	// Names lists namespaces by name.
	// +optional
	Names []string `json:"names,omitempty"`
	// Selector selects namespaces by their labels.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// Param is a name/value pair substituted into Task and Function templates.
type Param struct {
	// +kubebuilder:validation:MinLength=1
	Name  string `json:"name"`
	Value string `json:"value"`
}

// MaxParams bounds a list of Params: each is a variable substituted into
// every step of the Job (and every replica of a restore). Stash's Tasks and
// Functions take a handful; Stow's built-in variables are about 40.
const MaxParams = 64

// TaskRef selects a Task and adds parameters that override built-in variables.
type TaskRef struct {
	// +optional
	Name string `json:"name,omitempty"`
	// Params override the Task's variables; at most MaxParams (64).
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Params []Param `json:"params,omitempty"`
}

// ConditionStatus is True, False or Unknown.
// +kubebuilder:validation:Enum=True;False;Unknown
type ConditionStatus string

const (
	ConditionTrue    ConditionStatus = "True"
	ConditionFalse   ConditionStatus = "False"
	ConditionUnknown ConditionStatus = "Unknown"
)

// Condition is one observation of an object's state, upserted by Type.
type Condition struct {
	Type   string          `json:"type"`
	Status ConditionStatus `json:"status"`
	// +optional
	Reason string `json:"reason,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
	// +optional
	LastTransitionTime metav1.Time `json:"lastTransitionTime,omitempty"`
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Severity is Error, Warning or Info for a False condition.
	// +optional
	Severity string `json:"severity,omitempty"`
}

// RuntimeSettings tune the pods and containers Stow creates for an invoker.
type RuntimeSettings struct {
	// +optional
	Pod *PodRuntimeSettings `json:"pod,omitempty"`
	// +optional
	Container *ContainerRuntimeSettings `json:"container,omitempty"`
}

// PodRuntimeSettings apply to the Job pod and to the trigger CronJob pod.
type PodRuntimeSettings struct {
	// +optional
	PodLabels map[string]string `json:"podLabels,omitempty"`
	// +optional
	PodAnnotations map[string]string `json:"podAnnotations,omitempty"`
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// ServiceAccountName replaces the ServiceAccount Stow would create.
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// +optional
	ServiceAccountAnnotations map[string]string `json:"serviceAccountAnnotations,omitempty"`
	// +optional
	AutomountServiceAccountToken *bool `json:"automountServiceAccountToken,omitempty"`
	// +optional
	NodeName string `json:"nodeName,omitempty"`
	// +optional
	SecurityContext *corev1.PodSecurityContext `json:"securityContext,omitempty"`
	// +optional
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
	// +optional
	SchedulerName string `json:"schedulerName,omitempty"`
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`
	// +optional
	Priority *int32 `json:"priority,omitempty"`
	// +optional
	RuntimeClassName *string `json:"runtimeClassName,omitempty"`
	// +optional
	EnableServiceLinks *bool `json:"enableServiceLinks,omitempty"`
	// +optional
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
}

// ContainerRuntimeSettings apply to every Job container.
type ContainerRuntimeSettings struct {
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`
	// +optional
	LivenessProbe *corev1.Probe `json:"livenessProbe,omitempty"`
	// +optional
	ReadinessProbe *corev1.Probe `json:"readinessProbe,omitempty"`
	// +optional
	Lifecycle *corev1.Lifecycle `json:"lifecycle,omitempty"`
	// +optional
	SecurityContext *corev1.SecurityContext `json:"securityContext,omitempty"`
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`
	// +optional
	EnvFrom []corev1.EnvFromSource `json:"envFrom,omitempty"`
	// Nice reaches restic as NICE_ADJUSTMENT.
	// +optional
	Nice *NiceSettings `json:"nice,omitempty"`
	// IONice reaches restic as IONICE_CLASS and IONICE_CLASS_DATA.
	// +optional
	IONice *IONiceSettings `json:"ionice,omitempty"`
}

// NiceSettings set the CPU priority of restic.
type NiceSettings struct {
	// +kubebuilder:validation:Minimum=-20
	// +kubebuilder:validation:Maximum=19
	// +optional
	Adjustment *int32 `json:"adjustment,omitempty"`
}

// IONiceSettings set the IO priority of restic.
type IONiceSettings struct {
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=3
	// +optional
	Class *int32 `json:"class,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=7
	// +optional
	ClassData *int32 `json:"classData,omitempty"`
}

// EmptyDirSettings configure the scratch volume mounted at /stow-tmp.
type EmptyDirSettings struct {
	// +optional
	Medium corev1.StorageMedium `json:"medium,omitempty"`
	// +optional
	SizeLimit *resource.Quantity `json:"sizeLimit,omitempty"`
	// DisableCaching runs restic with --no-cache.
	// +optional
	DisableCaching bool `json:"disableCaching,omitempty"`
}

// RetryConfig retries a failed session by creating a new one.
type RetryConfig struct {
	// MaxRetry is how many retry sessions a failed session may lead to.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	// +optional
	MaxRetry int32 `json:"maxRetry,omitempty"`
	// Delay before the retry session is created; at least 30s (MinRetryDelay),
	// which is also the delay when it is empty.
	// +optional
	Delay Duration `json:"delay,omitempty"`
}

// HookExecutionPolicy decides whether a post hook runs.
// +kubebuilder:validation:Enum=Always;OnSuccess;OnFailure;OnFinalRetryFailure
type HookExecutionPolicy string

const (
	ExecuteAlways              HookExecutionPolicy = "Always"
	ExecuteOnSuccess           HookExecutionPolicy = "OnSuccess"
	ExecuteOnFailure           HookExecutionPolicy = "OnFailure"
	ExecuteOnFinalRetryFailure HookExecutionPolicy = "OnFinalRetryFailure"
)

// Handler is one hook action: exactly one of exec, httpGet, httpPost, tcpSocket.
// +kubebuilder:validation:XValidation:rule="[has(self.exec), has(self.httpGet), has(self.httpPost), has(self.tcpSocket)].filter(x, x).size() == 1",message="exactly one of exec, httpGet, httpPost, tcpSocket must be set"
type Handler struct {
	// +optional
	Exec *corev1.ExecAction `json:"exec,omitempty"`
	// +optional
	HTTPGet *HTTPGetAction `json:"httpGet,omitempty"`
	// +optional
	HTTPPost *HTTPPostAction `json:"httpPost,omitempty"`
	// +optional
	TCPSocket *corev1.TCPSocketAction `json:"tcpSocket,omitempty"`
	// ContainerName selects the container an exec hook runs in.
	// +optional
	ContainerName string `json:"containerName,omitempty"`
}

// HTTPGetAction is an HTTP GET hook.
// +kubebuilder:validation:XValidation:rule="type(self.port) == string ? self.port.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') : (self.port >= 1 && self.port <= 65535)",message="must be a number between 1 and 65535 or a port name",fieldPath=".port"
type HTTPGetAction struct {
	// +optional
	Host string `json:"host,omitempty"`
	// +optional
	Path string             `json:"path,omitempty"`
	Port intstr.IntOrString `json:"port"`
	// +optional
	Scheme corev1.URIScheme `json:"scheme,omitempty"`
	// +optional
	HTTPHeaders []corev1.HTTPHeader `json:"httpHeaders,omitempty"`
}

// HTTPPostAction is an HTTP POST hook with a body or a form.
type HTTPPostAction struct {
	HTTPGetAction `json:",inline"`
	// +optional
	Body string `json:"body,omitempty"`
	// +optional
	Form []FormEntry `json:"form,omitempty"`
}

// FormEntry is one form field of an HTTP POST hook.
type FormEntry struct {
	Key    string   `json:"key"`
	Values []string `json:"values"`
}

// PostHookHandler is a post hook with its execution policy.
type PostHookHandler struct {
	Handler `json:",inline"`
	// +kubebuilder:default=Always
	// +optional
	ExecutionPolicy HookExecutionPolicy `json:"executionPolicy,omitempty"`
}

// BackupHooks run before and after a backup.
type BackupHooks struct {
	// +optional
	PreBackup *Handler `json:"preBackup,omitempty"`
	// +optional
	PostBackup *PostHookHandler `json:"postBackup,omitempty"`
}

// RestoreHooks run before and after a restore.
type RestoreHooks struct {
	// +optional
	PreRestore *Handler `json:"preRestore,omitempty"`
	// +optional
	PostRestore *PostHookHandler `json:"postRestore,omitempty"`
}

// Driver is how data is moved; Restic is the only one Stow implements.
// +kubebuilder:validation:Enum=Restic
type Driver string

// ResticDriver backs up with restic.
const ResticDriver Driver = "Restic"

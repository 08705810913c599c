package backupconfiguration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/names"
	"github.com/stowhq/stow/pkg/resolve"
)

// Trigger CronJob settings. The trigger pod only creates a BackupSession, so
// it gets a short deadline, no retries and a small history.
const (
	TriggerContainer        = "stow-trigger"
	SpecHashAnnotation      = "stow.dev/spec-hash"
	triggerDeadlineSeconds  = int64(300)
	startingDeadlineSeconds = int64(300)
	triggerTTLSeconds       = int32(86400)
	historyLimit            = int32(1)
)

func objectLabels(bc *v1beta1.BackupConfiguration) map[string]string {
	return map[string]string{
		v1beta1.LabelComponent:   v1beta1.ComponentBackup,
		v1beta1.LabelManagedBy:   v1beta1.ManagedByStow,
		v1beta1.LabelInvokerType: v1beta1.KindBackupConfiguration,
		v1beta1.LabelInvokerName: names.LabelValue(bc.Name),
	}
}

func objectMeta(bc *v1beta1.BackupConfiguration, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:            name,
		Namespace:       bc.Namespace,
		Labels:          objectLabels(bc),
		OwnerReferences: []metav1.OwnerReference{v1beta1.OwnerRef(v1beta1.KindBackupConfiguration, bc.Name, bc.UID)},
	}
}

// serviceAccountName is the trigger pod's ServiceAccount: the user's, the
// namespace's shared one, or bc's own (trigger.go).
func serviceAccountName(bc *v1beta1.BackupConfiguration) string {
	switch triggerIdentityOf(bc) {
	case identityUser:
		return bc.Spec.RuntimeSettings.Pod.ServiceAccountName
	case identityNamespace:
		return names.NamespaceTrigger
	}
	return names.TriggerServiceAccount(bc.Name)
}

func desiredServiceAccount(bc *v1beta1.BackupConfiguration) *corev1.ServiceAccount {
	sa := &corev1.ServiceAccount{ObjectMeta: objectMeta(bc, names.TriggerServiceAccount(bc.Name))}
	if p := bc.Spec.RuntimeSettings.Pod; p != nil && len(p.ServiceAccountAnnotations) > 0 {
		sa.Annotations = map[string]string{}
		for k, v := range p.ServiceAccountAnnotations {
			sa.Annotations[k] = v
		}
	}
	return sa
}

// desiredRole grants exactly what `stow create-backupsession` needs: read
// this one BackupConfiguration and create BackupSessions in its namespace.
func desiredRole(bc *v1beta1.BackupConfiguration) *rbacv1.Role {
	return &rbacv1.Role{
		ObjectMeta: objectMeta(bc, names.TriggerServiceAccount(bc.Name)),
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{v1beta1.GroupName}, Resources: []string{"backupconfigurations"}, ResourceNames: []string{bc.Name}, Verbs: []string{"get"}},
			{APIGroups: []string{v1beta1.GroupName}, Resources: []string{"backupsessions"}, Verbs: []string{"create"}},
		},
	}
}

func desiredRoleBinding(bc *v1beta1.BackupConfiguration) *rbacv1.RoleBinding {
	name := names.TriggerServiceAccount(bc.Name)
	return &rbacv1.RoleBinding{
		ObjectMeta: objectMeta(bc, name),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: bc.Namespace}},
	}
}

// desiredCronJob is the trigger CronJob of bc (d is bc defaulted). Its
// SpecHashAnnotation lets the controller detect drift without comparing
// fields the API server defaults.
func desiredCronJob(bc, d *v1beta1.BackupConfiguration, schedule string, suspend bool, opts resolve.Options) *batchv1.CronJob {
	jobLabels := objectLabels(bc)
	podMeta := metav1.ObjectMeta{Labels: objectLabels(bc)}
	pod := corev1.PodSpec{
		RestartPolicy:      corev1.RestartPolicyNever,
		ServiceAccountName: serviceAccountName(d),
		// The trigger talks to the API server, so it needs its token.
		AutomountServiceAccountToken: ptr.To(true),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(int64(65534)), RunAsGroup: ptr.To(int64(65534)),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{{
			Name:                     TriggerContainer,
			Image:                    opts.Image,
			ImagePullPolicy:          corev1.PullIfNotPresent,
			Args:                     []string{"create-backupsession", "--namespace=" + bc.Namespace, "--invoker-name=" + bc.Name},
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false),
				ReadOnlyRootFilesystem:   ptr.To(true),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		}},
	}
	// Resources, env, envFrom and securityContext of the container
	// settings, and all pod settings, apply to the trigger pod as well.
	if cs := d.Spec.RuntimeSettings.Container; cs != nil {
		c := &pod.Containers[0]
		if len(cs.Resources.Limits) > 0 || len(cs.Resources.Requests) > 0 {
			c.Resources = *cs.Resources.DeepCopy()
		}
		for _, e := range cs.Env {
			c.Env = append(c.Env, *e.DeepCopy())
		}
		for _, e := range cs.EnvFrom {
			c.EnvFrom = append(c.EnvFrom, *e.DeepCopy())
		}
		if cs.SecurityContext != nil {
			c.SecurityContext = cs.SecurityContext.DeepCopy()
		}
	}
	resolve.ApplyPodSettings(&pod, &podMeta, d.Spec.RuntimeSettings.Pod, opts)
	// A root container (the Stash recipe for unreadable files) must not
	// meet the default runAsNonRoot here either: the trigger would never start.
	resolve.Harden(&pod, false, d.Spec.RuntimeSettings.Pod != nil && d.Spec.RuntimeSettings.Pod.SecurityContext != nil)

	cj := &batchv1.CronJob{
		ObjectMeta: objectMeta(bc, names.CronJob(bc.Name)),
		Spec: batchv1.CronJobSpec{
			Schedule:                   schedule,
			TimeZone:                   d.Spec.TimeZone,
			Suspend:                    ptr.To(suspend),
			ConcurrencyPolicy:          batchv1.ForbidConcurrent,
			StartingDeadlineSeconds:    ptr.To(startingDeadlineSeconds),
			SuccessfulJobsHistoryLimit: ptr.To(historyLimit),
			FailedJobsHistoryLimit:     ptr.To(historyLimit),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: jobLabels},
				Spec: batchv1.JobSpec{
					BackoffLimit:            ptr.To(int32(0)),
					ActiveDeadlineSeconds:   ptr.To(triggerDeadlineSeconds),
					TTLSecondsAfterFinished: ptr.To(triggerTTLSeconds),
					Template:                corev1.PodTemplateSpec{ObjectMeta: podMeta, Spec: pod},
				},
			},
		},
	}
	cj.Annotations = map[string]string{SpecHashAnnotation: specHash(cj.Labels, cj.Spec)}
	return cj
}

func specHash(parts ...any) string {
	b, _ := json.Marshal(parts)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// client is what getOrCreate needs of a typed client.
type client[T any] interface {
	Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error)
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
}

// getOrCreate returns the object want names: from the cache (cached) when
// it is there, else created from want; a create that finds it made
// meanwhile (the cache was behind) reads it from the API.
func getOrCreate[T metav1.Object](ctx context.Context, cached func(name string) (T, error), c client[T], want T) (T, error) {
	cur, err := cached(want.GetName())
	if apierrors.IsNotFound(err) {
		cur, err = c.Create(ctx, want, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			cur, err = c.Get(ctx, want.GetName(), metav1.GetOptions{})
		}
	}
	return cur, err
}

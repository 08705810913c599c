package resolve

import (
	"encoding/json"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// HookContainer is the container of a hook Job.
const HookContainer = "hook"

// HookJob builds the Job that runs one HTTP or TCP hook (already rendered)
// in the session's namespace, so that its NetworkPolicy applies: the Stow
// image running `stow run-hook`, as 65534 with PodSecurity "restricted"
// settings, without a ServiceAccount token, a volume or any Secret (a hook
// never sees the repository password). deadline bounds the Job
// (activeDeadlineSeconds); timeout bounds the hook inside it.
func HookJob(name, namespace string, owner metav1.OwnerReference, hookType string, h v1beta1.Handler, timeout, deadline time.Duration, opts Options) (*batchv1.Job, error) {
	if opts.Image == "" {
		return nil, fmt.Errorf("%s hook: no image (the operator image is not configured)", hookType)
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("%s hook: %v", hookType, err)
	}
	pod := corev1.PodSpec{
		Containers: []corev1.Container{{
			Name:                     HookContainer,
			Image:                    opts.Image,
			ImagePullPolicy:          corev1.PullIfNotPresent,
			Args:                     []string{"run-hook", "--hook=" + hookType, "--handler=" + string(b), "--timeout=" + timeout.String()},
			Env:                      []corev1.EnvVar{{Name: VarHookType, Value: hookType}},
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		}},
		RestartPolicy:                corev1.RestartPolicyNever,
		AutomountServiceAccountToken: ptr.To(false),
		EnableServiceLinks:           ptr.To(false),
		ImagePullSecrets:             mergePullSecrets(opts.ImagePullSecrets, nil),
		SecurityContext:              defaultPodSecurity(),
	}
	harden(&pod, false, false)
	secs := max(int64(deadline.Seconds()), 1)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, OwnerReferences: []metav1.OwnerReference{owner}},
		Spec: batchv1.JobSpec{
			BackoffLimit:          ptr.To(int32(0)),
			ActiveDeadlineSeconds: &secs,
			Template:              corev1.PodTemplateSpec{Spec: pod},
		},
	}, nil
}

package resolve

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/identity"
	"github.com/stowhq/stow/pkg/jobenv"
	"github.com/stowhq/stow/pkg/names"
)

// DefaultLockWait is how long a Job of a session without timeOut waits for a
// restic lock held by someone else. restic treats a lock older than 30
// minutes as stale, so a holder that died without cleaning up (say, on
// another cluster) is outwaited; a live one (a long prune) makes the
// session fail with its name instead of hanging.
const DefaultLockWait = 35 * time.Minute

// lockDeadlineMargin is kept between the lock deadline and the session's
// deadline, so that the runner reports the lock holder before the operator
// stops the Job for the session's timeOut. A short timeOut keeps a quarter
// of itself: the step's exit, the kubelet's report and the operator's
// observation took more than a tenth (10 s of 100 s) on a loaded node.
const lockDeadlineMargin = 30 * time.Second

// lockDeadline is when a Job of a session created at created with timeOut
// (nil: none) stops waiting for locks.
func lockDeadline(created metav1.Time, timeOut *v1beta1.Duration, opts Options) time.Time {
	if timeOut != nil && timeOut.Duration > 0 {
		margin := min(lockDeadlineMargin, timeOut.Duration/4)
		return created.Add(timeOut.Duration - margin)
	}
	wait := opts.DefaultLockWait
	if wait <= 0 {
		wait = DefaultLockWait
	}
	return created.Add(wait)
}

// contract is what the operator fixes in every container of a Job.
func contract(id identity.Identity, deadline time.Time, opts Options) jobenv.Contract {
	return jobenv.Contract{Identity: id, OperatorURL: opts.OperatorURL, LockHostPrefix: opts.LockHostPrefix, LockDeadline: deadline}
}

// applyContract sets the contract's variables on every container of pod,
// replacing any of the same name a Function or runtimeSettings set, and
// gives the pod its lock hostname: restic records the hostname in the locks
// it takes, and the operator recognizes this cluster's Stow pods by it.
func applyContract(pod *corev1.PodSpec, meta *metav1.ObjectMeta, c jobenv.Contract, lockHost string) {
	env := c.Env()
	for _, list := range [][]corev1.Container{pod.InitContainers, pod.Containers} {
		for i := range list {
			for _, e := range env {
				upsertEnv(&list[i], e)
			}
		}
	}
	if lockHost == "" {
		return
	}
	pod.Hostname = lockHost
	if meta.Labels == nil {
		meta.Labels = map[string]string{}
	}
	meta.Labels[v1beta1.LabelResticHost] = lockHost
}

// lockHost is the pod hostname of the Job of ordinal of the owner with uid,
// or "" when the operator runs without a cluster lock-host prefix.
func lockHost(uid string, ordinal int, opts Options) string {
	if opts.LockHostPrefix == "" {
		return ""
	}
	return names.LockHost(opts.LockHostPrefix, uid, ordinal)
}

package placement

import (
	"context"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/stowhq/stow/pkg/controller/executor"
)

// ObserveNode turns the watchdog's Running or Pending verdict on job into
// Deleted with reason NodeLost when the node of its pod is lost (NodeLost,
// DefaultNodeLostGrace): the controllers then stop the Job and fail the
// session as for a deleted pod. It returns when to look again while a node
// is NotReady for less than the grace period (0: no need).
func ObserveNode(ctx context.Context, kube kubernetes.Interface, job *batchv1.Job, pods []*corev1.Pod, now time.Time, obs *executor.Observation) (time.Duration, error) {
	if obs.State != executor.Running && obs.State != executor.Pending {
		return 0, nil
	}
	lost, again, err := NodeLost(ctx, kube, job.UID, pods, now, DefaultNodeLostGrace)
	if err != nil || lost == "" {
		return again, err
	}
	*obs = executor.Observation{State: executor.Deleted, Reason: ReasonNodeLost, Message: lost}
	return 0, nil
}

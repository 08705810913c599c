package backupsession

import (
	"context"
	"time"

	batchv1 "k8s.io/api/batch/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/claim"
)

// FailedInterimJobTTL is how long the finished Job of a failed session with
// an interim volume is kept for its logs (a succeeded one's goes at once):
// its pod holds the interim volume, which is deleted only after it.
const FailedInterimJobTTL = time.Hour

// endInterim deletes the interim volume of the finished session s, and
// hands its finished Job to the TTL controller: a finished pod still holds
// its PVCs, so the volume's storage is freed once the pod is gone.
func (c *Controller) endInterim(ctx context.Context, s *v1beta1.BackupSession, bc *v1beta1.BackupConfiguration) error {
	if bc.Spec.InterimVolumeTemplate == nil {
		return nil
	}
	if err := claim.DeleteInterim(ctx, c.Kube, c.Recorder, s, bc.Spec.InterimVolumeTemplate); err != nil {
		return err
	}
	_, err := c.Jobs.ReleaseFinished(ctx, s, func(*batchv1.Job) time.Duration {
		if s.Status.Phase == v1beta1.BackupSessionSucceeded {
			return 0
		}
		return FailedInterimJobTTL
	})
	return err
}

package backupsession

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/controller/claim"
	"github.com/stowhq/stow/pkg/interim"
)

// FailedInterimJobTTL is how long the finished Job of a failed session with
// an interim volume is kept for its logs (a succeeded one's goes at once):
// its pod holds the interim volume, which is deleted only after it.
const FailedInterimJobTTL = time.Hour

// createInterim creates the interim volume of s from bc's
// interimVolumeTemplate, before its Job. msg is the session's failure when
// it cannot be made and waiting would not change that; err is a transient
// API error (the sync is retried).
func (c *Controller) createInterim(ctx context.Context, s *v1beta1.BackupSession, bc *v1beta1.BackupConfiguration) (msg string, err error) {
	tpl := bc.Spec.InterimVolumeTemplate
	if tpl == nil {
		return "", nil
	}
	pvc, err := interim.Claim(tpl, s.Namespace, s.Name, v1beta1.OwnerRef(v1beta1.KindBackupSession, s.Name, s.UID), v1beta1.KindBackupConfiguration, bc.Name)
	if err != nil {
		return err.Error(), nil
	}
	if err := claim.Create(ctx, c.Kube, pvc, claim.ControlledBy(s.UID)); err != nil {
		if msg, ok := claim.Failure("interim volume", pvc.Name, err); ok {
			return msg, nil
		}
		return "", fmt.Errorf("create PVC %s/%s: %w", s.Namespace, pvc.Name, err)
	}
	return "", nil
}

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

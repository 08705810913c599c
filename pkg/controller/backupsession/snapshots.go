package backupsession

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/names"
)

// recordSnapshots keeps the configuration's Snapshot records in step with
// what the session did: one record per snapshot it took, and none for those
// its retention forgot. Records are written by name, never listed, so their
// cost does not grow with their number; a session handled twice (a lost
// status write) finds its records made.
func (c *Controller) recordSnapshots(ctx context.Context, s *v1beta1.BackupSession, bc *v1beta1.BackupConfiguration, m merged, now time.Time) error {
	client := c.Stow.StowV1beta1().Snapshots(s.Namespace)
	target := targetRef(bc)
	// A snapshot of several paths is reported once per path: one record
	// holds them all.
	var order []string
	records := map[string]*v1beta1.Snapshot{}
	for _, st := range m.Snapshots {
		if len(st.Name) != 64 {
			continue // not a full restic id: nothing to name a record by
		}
		rec, ok := records[st.Name]
		if !ok {
			rec = &v1beta1.Snapshot{
				ObjectMeta: metav1.ObjectMeta{Name: names.SnapshotRecord(st.Name), Namespace: s.Namespace, Labels: snapshotLabels(bc)},
				Spec: v1beta1.SnapshotSpec{
					ID: st.Name, Time: metav1.NewTime(now), Hostname: m.Host, MountPath: v1beta1.TargetMountPath(bc.Spec.Target.VolumeMounts),
					Repository:    v1beta1.ObjectRef{Name: bc.Spec.Repository.Name, Namespace: bc.Spec.Repository.Namespace},
					Invoker:       v1beta1.BackupInvokerRef{APIGroup: v1beta1.GroupName, Kind: v1beta1.KindBackupConfiguration, Name: bc.Name},
					Target:        v1beta1.TargetRef{APIVersion: "v1", Kind: target.Kind, Name: target.Name, Namespace: target.Namespace},
					BackupSession: s.Name, TotalSize: st.TotalSize, TotalFiles: st.FileStats.TotalFiles,
				},
			}
			records[st.Name] = rec
			order = append(order, st.Name)
		}
		if st.Path != "" {
			rec.Spec.Paths = append(rec.Spec.Paths, st.Path)
		}
	}
	for _, id := range order {
		rec := records[id]
		if _, err := client.Create(ctx, rec, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("record snapshot %s: %w", rec.Name, err)
		}
	}
	if rt := m.Retention; rt != nil && rt.Error == "" {
		for _, id := range rt.RemovedIDs {
			if err := client.Delete(ctx, names.SnapshotRecord(id), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("delete the record of forgotten snapshot %s: %w", id, err)
			}
		}
	}
	return nil
}

// snapshotLabels select a configuration's records (kubectl get snapshots -l ...).
func snapshotLabels(bc *v1beta1.BackupConfiguration) map[string]string {
	l := names.SessionLabels(bc)
	delete(l, v1beta1.LabelComponent)
	for k, v := range l {
		l[k] = names.LabelValue(v)
	}
	return l
}

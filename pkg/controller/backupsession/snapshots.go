package backupsession

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
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
		if !resticID.MatchString(st.Name) {
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
		if st.Path != "" && len(rec.Spec.Paths) < v1beta1.MaxSnapshotPaths {
			rec.Spec.Paths = append(rec.Spec.Paths, st.Path)
		}
	}
	for _, id := range order {
		rec := records[id]
		_, err := client.Create(ctx, rec, metav1.CreateOptions{})
		switch {
		case err == nil || apierrors.IsAlreadyExists(err):
		case apierrors.IsInvalid(err):
			// What the step reported fits no record; retrying cannot
			// change that, and an error here would hold the session
			// (and its deadline) for good.
			c.Recorder.Eventf(s, corev1.EventTypeWarning, EventRecordRefused, "Snapshot %s was not recorded: %v", id, err)
		default:
			return fmt.Errorf("record snapshot %s: %w", rec.Name, err)
		}
	}
	if rt := m.Retention; rt != nil && rt.Error == "" {
		for _, id := range rt.RemovedIDs {
			if err := c.forgetRecord(ctx, s.Namespace, id, bc); err != nil {
				return err
			}
		}
	}
	return nil
}

// resticID is the form of a full restic snapshot id (the records' names
// and the CRD's pattern).
var resticID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// forgetRecord deletes the record of snapshot id that bc's retention
// forgot, if it is bc's: a step reports the ids it removed, and a record of
// another configuration (or of another snapshot under the same short name)
// is never deleted on its word.
func (c *Controller) forgetRecord(ctx context.Context, ns, id string, bc *v1beta1.BackupConfiguration) error {
	client := c.Stow.StowV1beta1().Snapshots(ns)
	rec, err := client.Get(ctx, names.SnapshotRecord(id), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the record of forgotten snapshot %s: %w", id, err)
	}
	if !strings.HasPrefix(rec.Spec.ID, id) || rec.Spec.Invoker.Kind != v1beta1.KindBackupConfiguration || rec.Spec.Invoker.Name != bc.Name {
		return nil
	}
	err = client.Delete(ctx, rec.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &rec.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete the record of forgotten snapshot %s: %w", id, err)
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

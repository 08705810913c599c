package backupsession

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	k8stesting "k8s.io/client-go/testing"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/jobresult"
)

// A step's report of a snapshot no record can hold does not hold the
// session: an id not of restic's form (here upper-case hex) is not
// recorded, and a record the API server refuses is named in an Event.
// Before, the refused write failed every sync, before the deadline was
// looked at: the session stayed Running for good and every later one was
// Skipped behind it.
func TestUnrecordableSnapshotDoesNotHoldTheSession(t *testing.T) {
	bc := readyBC("bc", "data", func(bc *v1beta1.BackupConfiguration) { bc.Spec.TimeOut = v1beta1.NewDuration(10 * time.Minute) })
	f := newFixture(t, bc, repository("repo"), newSession("bc-1", "bc", t0, ""))
	idPattern := regexp.MustCompile(`^[0-9a-f]{64}$`)
	f.stow.PrependReactor("create", "snapshots", func(a k8stesting.Action) (bool, runtime.Object, error) {
		// The CRD's pattern, and a refusal of the well-formed id for
		// whatever other reason the API server may have.
		s := a.(k8stesting.CreateAction).GetObject().(*v1beta1.Snapshot)
		if !idPattern.MatchString(s.Spec.ID) || s.Spec.ID == snapID {
			return true, nil, apierrors.NewInvalid(schema.GroupKind{Group: v1beta1.GroupName, Kind: "Snapshot"}, s.Name,
				field.ErrorList{field.Invalid(field.NewPath("spec", "id"), s.Spec.ID, "refused")})
		}
		return false, nil, nil
	})
	f.sync("bc-1")
	hostile := fmt.Sprintf("%064X", uint64(0xABCDEF))
	f.setPod("bc-1", corev1.PodSucceeded, t0, nil,
		terminated("pvc-backup-0", 0, "Completed", encode(jobresult.Result{Step: "backup-pvc", Host: "host-0",
			Snapshots: []v1beta1.SnapshotStats{{Name: hostile, Path: "/stow-data"}, {Name: snapID, Path: "/stow-data"}}})),
		terminated("update-status-1", 0, "Completed", encode(jobresult.Result{Step: v1beta1.FunctionUpdateStatus})))
	if err := f.syncErr("bc-1"); err != nil {
		t.Fatalf("sync: %v", err)
	}
	f.resync()
	if s := f.session("bc-1"); !s.Status.Phase.IsFinal() {
		t.Fatalf("session %s after its Job ended", s.Status.Phase)
	}
	if ev := f.events(); !hasEvent(ev, "Warning "+EventRecordRefused+" Snapshot "+snapID+" was not recorded") {
		t.Errorf("no Event names the refused record: %q", ev)
	}
}

// A retention result deletes only the configuration's own records: a step
// that reports another configuration's snapshot id as removed does not
// take that configuration's record with it.
func TestRetentionForgetsOnlyOwnRecords(t *testing.T) {
	otherID := "feedc0de" + snapID[8:]
	theirs := &v1beta1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: otherID[:16], Namespace: ns},
		Spec: v1beta1.SnapshotSpec{ID: otherID, Repository: v1beta1.ObjectRef{Name: "repo"},
			Invoker: v1beta1.BackupInvokerRef{Kind: v1beta1.KindBackupConfiguration, Name: "other"},
			Target:  v1beta1.TargetRef{Kind: v1beta1.KindPersistentVolumeClaim, Name: "logs"}}}
	mineID := "0ddba11" + snapID[7:]
	mine := &v1beta1.Snapshot{ObjectMeta: metav1.ObjectMeta{Name: mineID[:16], Namespace: ns},
		Spec: v1beta1.SnapshotSpec{ID: mineID, Repository: v1beta1.ObjectRef{Name: "repo"},
			Invoker: v1beta1.BackupInvokerRef{Kind: v1beta1.KindBackupConfiguration, Name: "bc"},
			Target:  v1beta1.TargetRef{Kind: v1beta1.KindPersistentVolumeClaim, Name: "data"}}}
	f := newFixture(t, readyBC("bc", "data"), readyBC("other", "logs"), repository("repo"), newSession("bc-1", "bc", t0, ""), theirs, mine)
	f.sync("bc-1")
	f.setPod("bc-1", corev1.PodSucceeded, t0, nil,
		terminated("pvc-backup-0", 0, "Completed", encode(jobresult.Result{Step: "backup-pvc", Host: "host-0",
			Snapshots: []v1beta1.SnapshotStats{{Name: snapID, Path: "/stow-data"}}})),
		terminated("update-status-1", 0, "Completed", encode(jobresult.Result{Step: v1beta1.FunctionUpdateStatus,
			Retention: &jobresult.RetentionResult{SnapshotsKept: 1, SnapshotsRemoved: 2, RemovedIDs: []string{otherID, mineID}}})))
	f.sync("bc-1")
	if _, err := f.stow.StowV1beta1().Snapshots(ns).Get(context.Background(), otherID[:16], metav1.GetOptions{}); err != nil {
		t.Errorf("the record of configuration other's snapshot was deleted by bc's retention result: %v", err)
	}
	if _, err := f.stow.StowV1beta1().Snapshots(ns).Get(context.Background(), mineID[:16], metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("bc's own forgotten snapshot keeps its record: %v", err)
	}
}

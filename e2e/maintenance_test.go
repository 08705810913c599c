//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// requestMaintenance asks for tasks now and waits until every one of them is
// answered; it returns the Repository.
func requestMaintenance(t *testing.T, ns string, tasks ...string) *v1beta1.Repository {
	t.Helper()
	token := strconv.FormatInt(time.Now().UnixNano(), 10)
	ann := map[string]any{}
	for _, task := range tasks {
		ann[v1beta1.MaintenanceRequestAnnotation(task)] = token
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.stow.StowV1beta1().Repositories(ns).Patch(context.Background(), "repo", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	var repo *v1beta1.Repository
	waitFor(t, "maintenance "+token+" answered", 4*time.Minute, func(c context.Context) (bool, error) {
		r, err := e.stow.StowV1beta1().Repositories(ns).Get(c, "repo", metav1.GetOptions{})
		if err != nil || r.Status.Maintenance == nil {
			return false, nil
		}
		repo = r
		for _, task := range tasks {
			run := map[string]*v1beta1.MaintenanceRun{v1beta1.MaintenanceCheck: r.Status.Maintenance.Check,
				v1beta1.MaintenancePrune: r.Status.Maintenance.Prune, v1beta1.MaintenanceRefresh: r.Status.Maintenance.Refresh,
				v1beta1.MaintenanceUnlock: r.Status.Maintenance.Unlock}[task]
			if run == nil || run.Request != token {
				return false, nil
			}
		}
		return true, nil
	})
	return repo
}

func runOf(r *v1beta1.Repository, task string) *v1beta1.MaintenanceRun {
	m := r.Status.Maintenance
	return map[string]*v1beta1.MaintenanceRun{v1beta1.MaintenanceCheck: m.Check, v1beta1.MaintenancePrune: m.Prune,
		v1beta1.MaintenanceRefresh: m.Refresh, v1beta1.MaintenanceUnlock: m.Unlock}[task]
}

// Sessions no longer check or prune; the Repository's maintenance does, in
// Jobs of its own, on request here: a prune frees what retention forgot, a
// check verifies the repository, a refresh measures it.
func TestRepositoryMaintenanceOnRequest(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	ns := namespace(t)
	pvc(t, ns, "data", corev1.ReadWriteMany)
	runFixture(t, ns, "data", "big", "/data", "8")
	createRepository(t, ns, "s3")
	createBC(t, backupConfig(ns, "bc", "data", "0 0 1 1 *", 1))
	waitBCReady(t, ns, "bc")
	if s := triggerBackup(t, ns, "bc", 3*time.Minute); s.Status.Phase != v1beta1.BackupSessionSucceeded {
		t.Fatalf("first backup: %s (%s)", s.Status.Phase, s.Status.Reason)
	}
	if s := getSession(t, ns, waitSession(t, ns, "bc", time.Minute, nil).Name); v1beta1.HasCondition(s.Status.Conditions, v1beta1.RepositoryIntegrityVerified) {
		t.Errorf("the session checked the repository: %+v", s.Status.Conditions)
	}
	runFixture(t, ns, "data", "big", "/data", "8") // new data: the first snapshot's becomes garbage once forgotten
	if s := triggerBackup(t, ns, "bc", 3*time.Minute); s.Status.Phase != v1beta1.BackupSessionSucceeded {
		t.Fatalf("second backup: %s (%s)", s.Status.Phase, s.Status.Reason)
	}
	// What prune frees is storage: count the repository's pack files from
	// the host (the size in status is the data snapshots reference).
	b, secret := backend(t, ns, "s3")
	secret["RESTIC_PASSWORD"] = password
	packs := func() int {
		out, err := hostRestic(t, b, secret, "list", "packs", "--no-lock").Output()
		if err != nil {
			t.Fatal(err)
		}
		return len(strings.Fields(string(out)))
	}
	packsBefore, packsAfter := packs(), packs
	before := requestMaintenance(t, ns, v1beta1.MaintenanceRefresh)
	if r := runOf(before, v1beta1.MaintenanceRefresh); r.Succeeded == nil || !*r.Succeeded || before.Status.SnapshotCount != 1 {
		t.Fatalf("refresh: %+v, snapshotCount %d", r, before.Status.SnapshotCount)
	}
	after := requestMaintenance(t, ns, v1beta1.MaintenancePrune, v1beta1.MaintenanceCheck, v1beta1.MaintenanceRefresh)
	for _, task := range []string{v1beta1.MaintenancePrune, v1beta1.MaintenanceCheck, v1beta1.MaintenanceRefresh} {
		if r := runOf(after, task); r.Succeeded == nil || !*r.Succeeded {
			t.Errorf("%s: %+v", task, r)
		}
	}
	if after.Status.Integrity == nil || !*after.Status.Integrity {
		t.Errorf("integrity = %v after a successful check", after.Status.Integrity)
	}
	if n := packsAfter(); n >= packsBefore {
		t.Errorf("prune freed nothing: %d pack files -> %d", packsBefore, n)
	}
	if c := v1beta1.GetCondition(after.Status.Conditions, v1beta1.MaintenanceFailed); c == nil || c.Status != v1beta1.ConditionFalse {
		t.Errorf("MaintenanceFailed = %+v", c)
	}
	waitEvent(t, ns, v1beta1.KindRepository, "repo", corev1.EventTypeNormal, "MaintenanceSucceeded")
}

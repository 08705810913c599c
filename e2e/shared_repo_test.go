//go:build e2e

package e2e

import (
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/internal/testenv"
)

// sharedS3Repository creates Repository "repo" on the suite's MinIO under a
// prefix of its own, usable from every namespace, with its Secret in each of
// namespaces (a Job reads the storage Secret from its own namespace).
func sharedS3Repository(t *testing.T, owner string, namespaces ...string) (v1beta1.Backend, map[string]string) {
	t.Helper()
	c := context.Background()
	b, data := backend(t, owner, "s3")
	data["RESTIC_PASSWORD"] = "pw-" + rand.String(20)
	for _, ns := range append([]string{owner}, namespaces...) {
		if _, err := e.kube.CoreV1().Secrets(ns).Create(c, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "repo-secret", Namespace: ns}, StringData: data}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.stow.StowV1beta1().Repositories(owner).Create(c, &v1beta1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: owner},
		Spec: v1beta1.RepositorySpec{Backend: b, UsagePolicy: &v1beta1.UsagePolicy{
			AllowedNamespaces: v1beta1.AllowedNamespaces{From: v1beta1.NamespacesFromAll}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return b, data
}

// hostRestic is restic on the test's host, on the S3 repository b with the
// keys of secret: a writer outside the cluster.
func hostRestic(t *testing.T, b v1beta1.Backend, secret map[string]string, args ...string) *exec.Cmd {
	t.Helper()
	bin, err := testenv.FindTool("restic", "STOW_RESTIC")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"RESTIC_REPOSITORY=s3:" + strings.TrimRight(b.S3.Endpoint, "/") + "/" + b.S3.Bucket + "/" + b.S3.Prefix,
		"RESTIC_PASSWORD=" + secret["RESTIC_PASSWORD"],
		"AWS_ACCESS_KEY_ID=" + secret["AWS_ACCESS_KEY_ID"], "AWS_SECRET_ACCESS_KEY=" + secret["AWS_SECRET_ACCESS_KEY"]}
	return cmd
}

// configSnapshots is the configuration's snapshot count once it is want,
// or what it is after a while (-1: none): its controller derives it from
// the sessions right after their results.
func configSnapshots(t *testing.T, ns, name string, want int64) int64 {
	t.Helper()
	return settle(t, want, func() int64 {
		bc, err := e.stow.StowV1beta1().BackupConfigurations(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if bc.Status.SnapshotCount == nil {
			return -1
		}
		return *bc.Status.SnapshotCount
	})
}

// A repository shared by two PVCs of one namespace and a third
// configuration in another namespace (same PVC name): each retention keeps
// its own snapshots only, and a restore with no rules brings back its own
// PVC's bytes although another PVC was backed up after it.
func TestSharedRepositoryRetentionAndRestore(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	owner, tenant := namespace(t), namespace(t)
	for _, p := range []struct{ ns, name, seed string }{{owner, "data", "11"}, {owner, "data2", "22"}, {tenant, "data", "33"}} {
		pvc(t, p.ns, p.name, corev1.ReadWriteMany)
		runFixture(t, p.ns, p.name, "write", "/data", p.seed, "5")
	}
	sharedS3Repository(t, owner, tenant)
	createBC(t, backupConfig(owner, "a", "data", "0 0 1 1 *", 1))
	createBC(t, backupConfig(owner, "b", "data2", "0 0 1 1 *", 1))
	theirs := backupConfig(tenant, "a", "data", "0 0 1 1 *", 1)
	theirs.Spec.Repository.Namespace = owner
	createBC(t, theirs)
	for _, bc := range []struct{ ns, name string }{{owner, "a"}, {owner, "b"}, {tenant, "a"}} {
		waitBCReady(t, bc.ns, bc.name)
	}
	want := runFixture(t, owner, "data", "manifest", "/data")
	for round := 1; round <= 2; round++ {
		for _, bc := range []struct{ ns, name string }{{owner, "a"}, {owner, "b"}, {tenant, "a"}} {
			if s := triggerBackup(t, bc.ns, bc.name, 3*time.Minute); s.Status.Phase != v1beta1.BackupSessionSucceeded {
				t.Fatalf("round %d of %s/%s: %s (%s)", round, bc.ns, bc.name, s.Status.Phase, s.Status.Reason)
			}
		}
	}
	for _, bc := range []struct{ ns, name string }{{owner, "a"}, {owner, "b"}, {tenant, "a"}} {
		if n := configSnapshots(t, bc.ns, bc.name, 1); n != 1 {
			t.Errorf("%s/%s keeps %d snapshots; want 1 (keepLast 1, its own only)", bc.ns, bc.name, n)
		}
	}
	// Each namespace lists its own snapshots without the credentials: one
	// record per kept snapshot (the forgotten ones' records are gone).
	for _, bc := range []struct{ ns, name string }{{owner, "a"}, {owner, "b"}, {tenant, "a"}} {
		recs, err := e.stow.StowV1beta1().Snapshots(bc.ns).List(context.Background(), metav1.ListOptions{LabelSelector: v1beta1.LabelInvokerName + "=" + bc.name})
		if err != nil || len(recs.Items) != 1 || recs.Items[0].Spec.Invoker.Name != bc.name || !strings.HasPrefix(recs.Items[0].Spec.ID, recs.Items[0].Name) {
			t.Errorf("Snapshot records of %s/%s: %+v (%v); want its one kept snapshot", bc.ns, bc.name, recs, err)
		}
	}

	// Overwrite the owner's data, then restore it with no rules.
	runFixture(t, owner, "data", "mutate", "/data")
	if err := startRestore(t, owner, "restore", nil); err != nil {
		t.Fatal(err)
	}
	if rs := waitRestore(t, owner, "restore", 3*time.Minute); rs.Status.Phase != v1beta1.RestoreSucceeded {
		t.Fatalf("restore: %s (%s)", rs.Status.Phase, rs.Status.Reason)
	}
	// A restore does not delete files created after the backup.
	if got := dropLine(runFixture(t, owner, "data", "manifest", "/data"), "added-after-backup.txt"); got != want {
		t.Fatalf("PVC data restored with other bytes than its own backup:\n got %s\nwant %s", got, want)
	}
	// The operator chose the snapshot from the records and told the Job
	// which one, so it did not list the repository. The restore Job is gone
	// once it succeeded (it must not hold the PVC): its executor condition
	// says what it was told.
	recs, err := e.stow.StowV1beta1().Snapshots(owner).List(context.Background(), metav1.ListOptions{LabelSelector: v1beta1.LabelInvokerName + "=a"})
	if err != nil || len(recs.Items) != 1 {
		t.Fatalf("records of %s/a: %v %v", owner, recs, err)
	}
	rs, err := e.stow.StowV1beta1().RestoreSessions(owner).Get(context.Background(), "restore", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := v1beta1.GetCondition(rs.Status.Conditions, v1beta1.RestoreExecutorEnsured); c == nil || !strings.Contains(c.Message, "restores snapshot "+recs.Items[0].Spec.ID) {
		t.Errorf("restore's %s condition %+v does not name the record's snapshot %s", v1beta1.RestoreExecutorEnsured, c, recs.Items[0].Spec.ID)
	}
}

// A lock held by a restic process outside the cluster survives a backup:
// the backup step shares the repository, the retention step waits for the
// lock until shortly before the session's timeOut and then fails naming the
// holder; the outside process then completes, and the next backup succeeds.
func TestLockOfAnotherWriterSurvivesBackup(t *testing.T) {
	t.Parallel()
	e2eShared(t)
	ns := namespace(t)
	pvc(t, ns, "data", corev1.ReadWriteMany)
	runFixture(t, ns, "data", "write", "/data", "5", "5")
	b, secret := sharedS3Repository(t, ns)
	bc := backupConfig(ns, "bc", "data", "0 0 1 1 *", 1)
	timeOut := v1beta1.Duration{Duration: 100 * time.Second}
	bc.Spec.TimeOut = &timeOut
	createBC(t, bc)
	waitBCReady(t, ns, "bc")
	if s := triggerBackup(t, ns, "bc", 3*time.Minute); s.Status.Phase != v1beta1.BackupSessionSucceeded {
		t.Fatalf("first backup: %s (%s)", s.Status.Phase, s.Status.Reason)
	}
	// The check and refresh that follow a repository's first backup are
	// done before the outside writer comes (they would wait for its lock
	// too, ahead of the session this test watches).
	waitFor(t, "the first check and refresh", 3*time.Minute, func(c context.Context) (bool, error) {
		r, err := e.stow.StowV1beta1().Repositories(ns).Get(c, "repo", metav1.GetOptions{})
		if err != nil || r.Status.Maintenance == nil || r.Status.Maintenance.Job != "" {
			return false, err
		}
		m := r.Status.Maintenance
		return m.Check != nil && m.Check.LastTime != nil && m.Refresh != nil && m.Refresh.LastTime != nil, nil
	})

	// A person's restic on the host: a backup reading stdin holds its lock
	// until stdin closes.
	restic := func(args ...string) *exec.Cmd { return hostRestic(t, b, secret, args...) }
	ext := restic("backup", "--stdin", "--stdin-filename", "outside.bin", "--host", "outside")
	stdin, err := ext.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var extOut strings.Builder
	ext.Stdout, ext.Stderr = &extOut, &extOut
	if err := ext.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ext.Wait() }()
	t.Cleanup(func() { _ = ext.Process.Kill() })
	var lockID string
	waitFor(t, "the outside restic's lock", time.Minute, func(context.Context) (bool, error) {
		out, err := restic("list", "locks", "--no-lock").Output()
		if err != nil {
			return false, nil
		}
		lockID = strings.TrimSpace(string(out))
		return lockID != "", nil
	})
	host, _ := os.Hostname()

	s := triggerBackup(t, ns, "bc", 4*time.Minute)
	if s.Status.Phase != v1beta1.BackupSessionFailed {
		t.Fatalf("backup under a foreign lock ended %s: %s", s.Status.Phase, s.Status.Reason)
	}
	if !strings.Contains(s.Status.Reason, "repository locked by shared lock of") || !strings.Contains(s.Status.Reason, "@"+host) || !strings.Contains(s.Status.Reason, "since") {
		t.Errorf("reason %q does not name the holder (%s) and its time", s.Status.Reason, host)
	}
	out, err := restic("list", "locks", "--no-lock").Output()
	if err != nil || !strings.Contains(string(out), lockID) {
		t.Fatalf("the outside lock %s was removed (locks now: %q, %v)", lockID, out, err)
	}
	if _, err := io.WriteString(stdin, "outside data"); err != nil {
		t.Fatal(err)
	}
	_ = stdin.Close()
	if err := <-done; err != nil {
		t.Fatalf("the outside restic failed: %v\n%s", err, extOut.String())
	}
	if strings.Contains(extOut.String(), "error while unlocking") {
		t.Errorf("the outside restic found its lock gone:\n%s", extOut.String())
	}
	if s := triggerBackup(t, ns, "bc", 3*time.Minute); s.Status.Phase != v1beta1.BackupSessionSucceeded {
		t.Fatalf("backup after the outside restic finished: %s (%s)", s.Status.Phase, s.Status.Reason)
	}
}

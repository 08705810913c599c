package metrics

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/jobresult"
)

// Fixtures shaped like Stash's stand-alone PVC example.
func fixtureBC() *v1beta1.BackupConfiguration {
	return &v1beta1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "nfs-pvc-backup"},
		Spec: v1beta1.BackupConfigurationSpec{
			Schedule:   "*/30 * * * *",
			Driver:     v1beta1.ResticDriver,
			Repository: v1beta1.ObjectRef{Name: "gcs-repo"},
			Target:     &v1beta1.BackupTarget{Ref: v1beta1.TargetRef{APIVersion: "v1", Kind: v1beta1.KindPersistentVolumeClaim, Name: "nfs-pvc"}},
		},
	}
}

func fixtureRepo() *v1beta1.Repository {
	return &v1beta1.Repository{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "gcs-repo"}}
}

func fixtureSession(phase v1beta1.TargetPhase, created time.Time) *v1beta1.BackupSession {
	return &v1beta1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "nfs-pvc-backup-1700000000", CreationTimestamp: metav1.NewTime(created)},
		Spec:       v1beta1.BackupSessionSpec{Invoker: v1beta1.BackupInvokerRef{Kind: v1beta1.KindBackupConfiguration, Name: "nfs-pvc-backup"}},
		Status: v1beta1.BackupSessionStatus{
			SessionDuration: "1m30s",
			Targets: []v1beta1.BackupTargetStatus{{
				Ref:        fixtureBC().Spec.Target.Ref,
				TotalHosts: ptr(int32(1)),
				Phase:      phase,
			}},
		},
	}
}

func fixtureRestore() *v1beta1.RestoreSession {
	return &v1beta1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "nfs-pvc-restore", CreationTimestamp: metav1.NewTime(time.Unix(1700000000, 0))},
		Spec: v1beta1.RestoreSessionSpec{
			Repository: v1beta1.ObjectRef{Name: "gcs-repo"},
			Target:     &v1beta1.RestoreTarget{Ref: v1beta1.TargetRef{APIVersion: "v1", Kind: v1beta1.KindPersistentVolumeClaim, Name: "restore-pvc"}},
		},
		Status: v1beta1.RestoreSessionStatus{SessionDuration: "45s", TotalHosts: ptr(int32(1))},
	}
}

// gcsRepo is the Repository, in namespace repos, of bcWithRepoNS.
func gcsRepo() *v1beta1.Repository {
	return &v1beta1.Repository{
		ObjectMeta: metav1.ObjectMeta{Namespace: "repos", Name: "gcs-repo"},
		Spec:       v1beta1.RepositorySpec{Backend: v1beta1.Backend{GCS: &v1beta1.GCSSpec{Bucket: "stow-bucket", Prefix: "demo/nfs"}}},
	}
}

func bcWithRepoNS() *v1beta1.BackupConfiguration {
	bc := fixtureBC()
	bc.Spec.Repository.Namespace = "repos"
	return bc
}

// withHost is s with the stats of one host.
func withHost(s *v1beta1.BackupSession, h v1beta1.HostBackupStats) *v1beta1.BackupSession {
	s.Status.Targets[0].Stats = []v1beta1.HostBackupStats{h}
	return s
}

func backupResult() v1beta1.HostBackupStats {
	return v1beta1.HostBackupStats{
		Hostname: "host-0", Phase: v1beta1.HostSucceeded, Duration: "2m3s",
		Snapshots: []v1beta1.SnapshotStats{
			{Name: "a", TotalSize: "1.000 MiB", Uploaded: "512 B", ProcessingTime: "1:02",
				FileStats: v1beta1.FileStats{TotalFiles: ptr(int64(10)), NewFiles: ptr(int64(3)), ModifiedFiles: ptr(int64(2)), UnmodifiedFiles: ptr(int64(5))}},
			{Name: "b", TotalSize: "1.000 KiB", Uploaded: "0 B", ProcessingTime: "0:01",
				FileStats: v1beta1.FileStats{TotalFiles: ptr(int64(1)), UnmodifiedFiles: ptr(int64(1))}},
		},
	}
}

const (
	bcJob      = "backupconfiguration-demo.nfs-pvc-backup"
	restoreJob = "restoresession-demo.nfs-pvc-restore"
)

var (
	bcInvoker      = map[string]string{"job": bcJob, "invoker_kind": "BackupConfiguration", "invoker_name": "nfs-pvc-backup", "namespace": "demo", "driver": "Restic", "repository": "gcs-repo"}
	bcTarget       = with(bcInvoker, map[string]string{"kind": "PersistentVolumeClaim", "group": "", "name": "nfs-pvc"})
	bcHost         = with(bcTarget, map[string]string{"hostname": "host-0"})
	restoreInvoker = map[string]string{"job": restoreJob, "invoker_kind": "RestoreSession", "invoker_name": "nfs-pvc-restore", "namespace": "demo", "driver": "Restic", "repository": "gcs-repo"}
	restoreTarget  = with(restoreInvoker, map[string]string{"kind": "PersistentVolumeClaim", "group": "", "name": "restore-pvc"})
	restoreHost    = with(restoreTarget, map[string]string{"hostname": "host-0"})
)

func with(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// Label sets of the metric families (Stash's, see families.go), without the
// job and instance labels the
// Pushgateway adds.
const (
	sessionLabelSet = "driver,invoker_kind,invoker_name,namespace,repository"
	targetLabelSet  = "driver,group,invoker_kind,invoker_name,kind,name,namespace,repository"
	hostLabelSet    = "driver,group,hostname,invoker_kind,invoker_name,kind,name,namespace,repository"
	repoLabelSet    = "backend,bucket,driver,invoker_kind,invoker_name,name,namespace,prefix,repository"
)

var familyLabelSets = map[string]string{
	BackupSessionSuccess: sessionLabelSet, BackupSessionDuration: sessionLabelSet, BackupTargetCount: sessionLabelSet,
	BackupLastSuccessTime: sessionLabelSet, BackupSessionSkipped: sessionLabelSet, BackupSessionLastSkippedTime: sessionLabelSet,
	BackupScheduleInterval: sessionLabelSet,
	BackupTargetSuccess:    targetLabelSet, BackupTargetHostCount: targetLabelSet, BackupTargetLastSuccessTime: targetLabelSet,
	BackupTargetSnapshotCount: targetLabelSet,
	BackupHostSuccess:         hostLabelSet, BackupHostDuration: hostLabelSet, BackupHostDataSize: hostLabelSet,
	BackupHostDataUploaded: hostLabelSet, BackupHostProcessingTime: hostLabelSet, BackupHostFilesTotal: hostLabelSet,
	BackupHostFilesNew: hostLabelSet, BackupHostFilesModified: hostLabelSet, BackupHostFilesUnmod: hostLabelSet,
	RepositoryIntegrity: repoLabelSet, RepositorySize: repoLabelSet, RepositorySnapshotCount: repoLabelSet,
	RepositorySnapshotCleaned: repoLabelSet, RepositoryIntegrityCheckTime: repoLabelSet,
	RestoreSessionSuccess: sessionLabelSet, RestoreSessionDuration: sessionLabelSet, RestoreTargetCount: sessionLabelSet,
	RestoreTargetSuccess: targetLabelSet, RestoreTargetHostCount: targetLabelSet,
	RestoreHostSuccess: hostLabelSet, RestoreHostDuration: hostLabelSet,
}

// checkLabelSets requires every pushed family present to carry exactly its
// label set above, and that no stash_appscode_com_* double was pushed.
func checkLabelSets(t *testing.T, mfs map[string]*dto.MetricFamily) {
	t.Helper()
	for name, mf := range mfs {
		if strings.HasPrefix(name, "stash_appscode_com_") {
			t.Errorf("double family %s pushed", name)
		}
		want, ok := familyLabelSets[name]
		if !strings.HasPrefix(name, "stash_") {
			continue
		}
		if !ok {
			t.Errorf("unexpected family %s", name)
			continue
		}
		if mf.GetType() != dto.MetricType_GAUGE {
			t.Errorf("%s is %v, want GAUGE", name, mf.GetType())
		}
		for _, m := range mf.GetMetric() {
			l := labelMap(m)
			delete(l, "job")
			delete(l, "instance")
			got := labelNames(&dto.Metric{Label: pairs(l)})
			if got != want {
				t.Errorf("%s labels = %s, want %s", name, got, want)
			}
		}
	}
}

func pairs(l map[string]string) []*dto.LabelPair {
	var out []*dto.LabelPair
	for k, v := range l {
		out = append(out, &dto.LabelPair{Name: ptr(k), Value: ptr(v)})
	}
	return out
}

// exercisePushContract runs the whole push contract against the Pushgateway
// at url (embedded or external) and checks it through url's /metrics.
func exercisePushContract(t *testing.T, url string) {
	ctx := context.Background()
	clock := time.Unix(1700000100, 0)
	p := NewPusher(url).(*httpPusher)
	p.now = func() time.Time { return clock }

	// A successful backup: the operator pushes what the Job reported
	// (repository, then host with the session).
	must(t, p.BackupRepositoryResult(ctx, bcWithRepoNS(), gcsRepo(), jobresult.Result{
		Step: "update-status", Integrity: ptr(true), TotalSize: "2.500 GiB", RepositorySnapshots: ptr(int64(12)),
		Retention: &jobresult.RetentionResult{SnapshotsKept: 7, SnapshotsRemoved: 2},
	}), "BackupRepositoryResult")
	must(t, p.BackupSessionFinished(ctx, fixtureBC(), fixtureRepo(), withHost(fixtureSession(v1beta1.TargetSucceeded, clock.Add(-time.Minute)), backupResult()), true), "BackupSessionFinished")

	mfs := scrape(t, url)
	checkLabelSets(t, mfs)
	expectValue(t, mfs, BackupSessionSuccess, bcInvoker, 1)
	expectValue(t, mfs, BackupSessionDuration, bcInvoker, 90)
	expectValue(t, mfs, BackupTargetCount, bcInvoker, 1)
	expectValue(t, mfs, BackupLastSuccessTime, bcInvoker, 1700000100)
	expectValue(t, mfs, BackupSessionSkipped, bcInvoker, 0)
	expectValue(t, mfs, BackupScheduleInterval, bcInvoker, 1800)
	expectValue(t, mfs, BackupTargetSuccess, bcTarget, 1)
	expectValue(t, mfs, BackupTargetHostCount, bcTarget, 1)
	expectValue(t, mfs, BackupTargetLastSuccessTime, bcTarget, 1700000100)
	expectValue(t, mfs, BackupHostSuccess, bcHost, 1)
	expectValue(t, mfs, BackupHostDuration, bcHost, 123)
	expectValue(t, mfs, BackupHostDataSize, bcHost, 1<<20+1<<10)
	expectValue(t, mfs, BackupHostDataUploaded, bcHost, 512)
	expectValue(t, mfs, BackupHostProcessingTime, bcHost, 63)
	expectValue(t, mfs, BackupHostFilesTotal, bcHost, 11)
	expectValue(t, mfs, BackupHostFilesNew, bcHost, 3)
	expectValue(t, mfs, BackupHostFilesModified, bcHost, 2)
	expectValue(t, mfs, BackupHostFilesUnmod, bcHost, 6)
	repoL := with(bcInvoker, map[string]string{"name": "gcs-repo", "namespace": "repos", "backend": "gcs", "bucket": "stow-bucket", "prefix": "demo/nfs"})
	expectValue(t, mfs, RepositoryIntegrity, repoL, 1)
	expectValue(t, mfs, RepositorySize, repoL, 2.5*(1<<30))
	expectValue(t, mfs, RepositorySnapshotCount, repoL, 12)     // the whole repository
	expectValue(t, mfs, BackupTargetSnapshotCount, bcTarget, 7) // this configuration's own
	expectValue(t, mfs, RepositorySnapshotCleaned, repoL, 2)
	expectValue(t, mfs, RepositoryIntegrityCheckTime, repoL, 1700000100)

	// A skipped session marks the invoker skipped and leaves success alone.
	clock = clock.Add(30 * time.Minute)
	must(t, p.BackupSessionSkipped(ctx, fixtureBC(), fixtureRepo(), fixtureSession("", clock)), "BackupSessionSkipped")
	mfs = scrape(t, url)
	expectValue(t, mfs, BackupSessionSkipped, bcInvoker, 1)
	expectValue(t, mfs, BackupSessionLastSkippedTime, bcInvoker, float64(clock.Unix()))
	expectValue(t, mfs, BackupSessionSuccess, bcInvoker, 1)

	// A failed session: success gauges follow the phase, the last-success
	// gauges keep their values, and skipped goes back to 0; a failed check
	// sets integrity 0.
	clock = clock.Add(30 * time.Minute)
	must(t, p.BackupRepositoryResult(ctx, bcWithRepoNS(), gcsRepo(), jobresult.Result{Step: "update-status", Integrity: ptr(false), Error: "integrity check: ..."}), "BackupRepositoryResult failure")
	failed := withHost(fixtureSession(v1beta1.TargetFailed, clock.Add(-time.Minute)),
		v1beta1.HostBackupStats{Hostname: "host-0", Phase: v1beta1.HostFailed, Error: "restic backup: exit status 3: unreadable files"})
	must(t, p.BackupSessionFinished(ctx, fixtureBC(), fixtureRepo(), failed, false), "BackupSessionFinished failure")
	mfs = scrape(t, url)
	checkLabelSets(t, mfs)
	expectValue(t, mfs, BackupSessionSuccess, bcInvoker, 0)
	expectValue(t, mfs, BackupLastSuccessTime, bcInvoker, 1700000100)
	expectValue(t, mfs, BackupSessionDuration, bcInvoker, 90)
	expectValue(t, mfs, BackupSessionSkipped, bcInvoker, 0)
	expectValue(t, mfs, BackupTargetSuccess, bcTarget, 0)
	expectValue(t, mfs, BackupTargetLastSuccessTime, bcTarget, 1700000100)
	expectValue(t, mfs, BackupHostSuccess, bcHost, 0)
	expectValue(t, mfs, BackupHostDataSize, bcHost, 1<<20+1<<10)
	expectValue(t, mfs, RepositoryIntegrity, repoL, 0)
	expectValue(t, mfs, RepositoryIntegrityCheckTime, repoL, float64(clock.Unix()))

	// A session whose Job never reported (deadline, lost pod, a failed init
	// step): its host, with no stats, still gets success 0.
	must(t, p.BackupSessionFinished(ctx, fixtureBC(), fixtureRepo(), withHost(fixtureSession(v1beta1.TargetSucceeded, clock), backupResult()), true), "recover")
	expectValue(t, scrape(t, url), BackupHostSuccess, bcHost, 1)
	must(t, p.BackupSessionFinished(ctx, fixtureBC(), fixtureRepo(), fixtureSession(v1beta1.TargetFailed, clock), false), "dead Job")
	mfs = scrape(t, url)
	expectValue(t, mfs, BackupHostSuccess, bcHost, 0)
	expectValue(t, mfs, BackupHostDataSize, bcHost, 1<<20+1<<10)

	// Restore: session, target and host from the operator.
	rs := fixtureRestore()
	rs.Status.Stats = []v1beta1.HostRestoreStats{{Hostname: "host-0", Phase: v1beta1.HostSucceeded, Duration: "40s"}}
	must(t, p.RestoreSessionFinished(ctx, rs, fixtureRepo(), true), "RestoreSessionFinished")
	mfs = scrape(t, url)
	checkLabelSets(t, mfs)
	expectValue(t, mfs, RestoreSessionSuccess, restoreInvoker, 1)
	expectValue(t, mfs, RestoreSessionDuration, restoreInvoker, 45)
	expectValue(t, mfs, RestoreTargetCount, restoreInvoker, 1)
	expectValue(t, mfs, RestoreTargetSuccess, restoreTarget, 1)
	expectValue(t, mfs, RestoreTargetHostCount, restoreTarget, 1)
	expectValue(t, mfs, RestoreHostSuccess, restoreHost, 1)
	expectValue(t, mfs, RestoreHostDuration, restoreHost, 40)
	rs = fixtureRestore()
	rs.Status.Stats = []v1beta1.HostRestoreStats{{Hostname: "host-0", Phase: v1beta1.HostRunning}} // its Job died
	must(t, p.RestoreSessionFinished(ctx, rs, fixtureRepo(), false), "RestoreSessionFinished failure")
	expectValue(t, scrape(t, url), RestoreHostSuccess, restoreHost, 0)
	must(t, p.RestoreSessionFinished(ctx, fixtureRestore(), fixtureRepo(), true), "RestoreSessionFinished again")

	// Maintenance: the Repository's own group, a failed check is 0.
	must(t, p.MaintenanceResult(ctx, gcsRepo(), jobresult.Result{Step: "maintain", Integrity: ptr(false), TotalSize: "1 GiB"}), "MaintenanceResult")
	mfs = scrape(t, url)
	maintL := map[string]string{"job": "repository-repos.gcs-repo", "invoker_kind": "Repository", "invoker_name": "gcs-repo", "driver": "Restic",
		"repository": "gcs-repo", "name": "gcs-repo", "namespace": "repos", "backend": "gcs", "bucket": "stow-bucket", "prefix": "demo/nfs"}
	expectValue(t, mfs, RepositoryIntegrity, maintL, 0)

	// Deleting the backup invoker's group removes all its series (host,
	// repository, session) and leaves the restore group alone; deleting it
	// again, or a group that never existed, is not an error.
	must(t, p.DeleteInvokerGroup(ctx, v1beta1.KindBackupConfiguration, "demo", "nfs-pvc-backup"), "DeleteInvokerGroup")
	must(t, p.DeleteInvokerGroup(ctx, v1beta1.KindBackupConfiguration, "demo", "nfs-pvc-backup"), "DeleteInvokerGroup again")
	must(t, p.DeleteInvokerGroup(ctx, v1beta1.KindBackupConfiguration, "demo", "never-existed"), "DeleteInvokerGroup absent")
	mfs = scrape(t, url)
	for name := range mfs {
		if s := series(mfs, name, map[string]string{"job": bcJob}); len(s) > 0 {
			t.Errorf("%s still has %d series of the deleted group", name, len(s))
		}
	}
	expectValue(t, mfs, RestoreSessionSuccess, restoreInvoker, 1)
}

func TestPushContractEmbedded(t *testing.T) {
	s, _ := startServer(t, ServerOptions{})
	exercisePushContract(t, s.URL())
}

// TestPushContractExternalPushgateway runs the same contract against the
// real Pushgateway (Debian package prometheus-pushgateway), as a user who sets
// --pushgateway-url to an external one would.
func TestPushContractExternalPushgateway(t *testing.T) {
	const bin = "/usr/bin/prometheus-pushgateway"
	if _, err := os.Stat(bin); err != nil {
		if testing.Short() {
			t.Skipf("%s not installed (apt-get install -y prometheus-pushgateway)", bin)
		}
		t.Fatalf("%s not installed: run apt-get install -y prometheus-pushgateway (or go test -short to skip)", bin)
	}
	url := startExternalPushgateway(t, bin)
	exercisePushContract(t, url)
}

// startExternalPushgateway runs the binary on a free loopback port; a port
// taken between picking and binding is retried.
func startExternalPushgateway(t *testing.T, bin string) string {
	t.Helper()
	var lastErr string
	for attempt := 0; attempt < 5; attempt++ {
		addr := freeLoopbackAddr(t)
		var out strings.Builder
		cmd := exec.Command(bin, "--web.listen-address="+addr)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		url := "http://" + addr
		if pollReady(url, exited, 10*time.Second) {
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
			})
			return url
		}
		_ = cmd.Process.Kill()
		<-exited
		lastErr = out.String()
	}
	t.Fatalf("%s did not become ready: %s", bin, lastErr)
	return ""
}

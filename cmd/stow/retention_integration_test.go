package main

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stowhq/stow/internal/testenv"
	"github.com/stowhq/stow/pkg/identity"
	"github.com/stowhq/stow/pkg/jobenv"
	"github.com/stowhq/stow/pkg/jobresult"
)

// backup-pvc --apply-retention applies the policy itself, after the backup,
// as update-status would: the Job needs one container. update-status after
// it carries that result forward and forgets nothing again.
func TestIntegrationBackupAppliesRetention(t *testing.T) {
	testenv.SkipIfShort(t)
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	mount := filepath.Join(dir, "stow-data")
	termLog := filepath.Join(dir, "termination-log")
	env := map[string]string{"RESTIC_PASSWORD": "job password"}
	for _, v := range (jobenv.Contract{Identity: identity.Identity{Namespace: "apps", InvokerKind: "BackupConfiguration", InvokerName: "nightly",
		TargetKind: "PersistentVolumeClaim", TargetName: "data"}}).Env() {
		env[v.Name] = v.Value
	}
	repoFlags := []string{"--provider=local", "--bucket=" + repo, "--scratch-dir=" + filepath.Join(dir, "scratch"),
		"--output-dir=" + filepath.Join(dir, "output"), "--termination-log=" + termLog, "--hostname=host-0"}
	step := func(t *testing.T, args ...string) (stowRun, jobresult.Result) {
		t.Helper()
		run := runStow(t, env, append(args, repoFlags...)...)
		return run, readResult(t, termLog)
	}
	backup := func(t *testing.T, round int) (stowRun, jobresult.Result) {
		t.Helper()
		testenv.WriteFile(t, filepath.Join(mount, "round.txt"), []byte(strconv.Itoa(round)), 0o644)
		return step(t, "backup-pvc", "--backupsession=s"+strconv.Itoa(round), "--backup-paths="+mount, "--mount-path="+mount,
			"--apply-retention", "--retention-keep-last=1", "--retention-prune=true")
	}
	run, res := backup(t, 1)
	if run.code != 0 || res.Error != "" || len(res.Snapshots) != 1 || res.Retention == nil || res.Retention.SnapshotsKept != 1 || res.Retention.SnapshotsRemoved != 0 {
		t.Fatalf("first backup-pvc --apply-retention: %s\nresult %+v retention %+v", run, res, res.Retention)
	}
	run, res = backup(t, 2)
	if run.code != 0 || res.Error != "" || res.Retention == nil || res.Retention.SnapshotsKept != 1 || res.Retention.SnapshotsRemoved != 1 || len(res.Retention.RemovedIDs) != 1 {
		t.Fatalf("second backup-pvc --apply-retention: %s\nresult %+v retention %+v", run, res, res.Retention)
	}
	// update-status after it: the same retention result, no second forget.
	run, st := step(t, "update-status", "--backupsession=s2", "--retention-keep-last=1", "--integrity-check=false")
	if run.code != 0 || st.Retention == nil || st.Retention.SnapshotsRemoved != 1 || !strings.Contains(run.stderr, "retention was applied by the backup step") ||
		strings.Contains(run.stderr, "retention of ") {
		t.Fatalf("update-status after backup-pvc --apply-retention: %s\nresult %+v", run, st.Retention)
	}
	// Without --apply-retention the backup leaves retention to update-status.
	testenv.WriteFile(t, filepath.Join(mount, "round.txt"), []byte("3"), 0o644)
	run, res = step(t, "backup-pvc", "--backupsession=s3", "--backup-paths="+mount, "--mount-path="+mount, "--retention-keep-last=1")
	if run.code != 0 || res.Retention != nil {
		t.Fatalf("backup-pvc without --apply-retention: %s\nretention %+v", run, res.Retention)
	}
	run, st = step(t, "update-status", "--backupsession=s3", "--retention-keep-last=1", "--integrity-check=false")
	if run.code != 0 || st.Retention == nil || st.Retention.SnapshotsRemoved != 1 {
		t.Fatalf("update-status: %s\nretention %+v", run, st.Retention)
	}
}

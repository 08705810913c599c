package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stowhq/stow/internal/testenv"
	"github.com/stowhq/stow/pkg/jobenv"
	"github.com/stowhq/stow/pkg/jobresult"
	"github.com/stowhq/stow/pkg/restic"
)

type stowRun struct {
	code           int
	stdout, stderr string
}

// runStow runs the built stow binary with a clean environment plus env.
func runStow(t *testing.T, env map[string]string, args ...string) stowRun {
	t.Helper()
	cmd := exec.Command(testenv.BuildStow(t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "STOW_RESTIC=" + testenv.Restic(t)}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stowRun{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// stepEnv is the environment of a Job step against MinIO m: its
// credentials, the repository password and the operator's contract c.
func stepEnv(m *testenv.MinIO, password string, c jobenv.Contract) map[string]string {
	e := m.Env()
	e["RESTIC_PASSWORD"] = password
	for _, v := range c.Env() {
		e[v.Name] = v.Value
	}
	return e
}

func (r stowRun) String() string {
	return "exit " + strconv.Itoa(r.code) + "\nstdout:\n" + r.stdout + "\nstderr:\n" + r.stderr
}

func TestIntegrationUserCommandsLocalRepo(t *testing.T) {
	testenv.SkipIfShort(t)
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	pwFile := filepath.Join(dir, "pw")
	testenv.WriteFile(t, pwFile, []byte("user password\n"), 0o600)
	src := filepath.Join(dir, "src")
	testenv.WriteFile(t, filepath.Join(src, "a.txt"), []byte("a"), 0o644)
	testenv.WriteFile(t, filepath.Join(src, "sub", "b.bin"), testenv.RandomBytes(7, 100<<10), 0o600)
	testenv.WriteFile(t, filepath.Join(src, "run.sh"), []byte("#!/bin/sh\n"), 0o755)

	res := runStow(t, nil, "backup", "--repo", repo, "--password-file", pwFile, "--host", "laptop", src)
	if res.code != 0 || !strings.Contains(res.stdout, "initialized repository") || !strings.Contains(res.stdout, "3 files (3 new") {
		t.Fatalf("backup: %s", res)
	}
	testenv.WriteFile(t, filepath.Join(src, "a.txt"), []byte("changed"), 0o644)
	res = runStow(t, nil, "backup", "--repo", repo, "--password-file", pwFile, "--host", "laptop", src)
	if res.code != 0 || strings.Contains(res.stdout, "initialized") || !strings.Contains(res.stdout, "1 changed") {
		t.Fatalf("second backup: %s", res)
	}

	res = runStow(t, nil, "snapshots", "--repo", repo, "--password-file", pwFile, "--json")
	var snaps []restic.Snapshot
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &snaps) != nil || len(snaps) != 2 {
		t.Fatalf("snapshots: %s", res)
	}
	if snaps[1].Hostname != "laptop" || snaps[1].MountPath() != src {
		t.Errorf("snapshot = %+v", snaps[1])
	}
	res = runStow(t, nil, "snapshots", "--repo", repo, "--password-file", pwFile)
	if res.code != 0 || !strings.Contains(res.stdout, snaps[0].ShortID) || !strings.Contains(res.stdout, "laptop") {
		t.Errorf("snapshots table: %s", res)
	}

	target := filepath.Join(dir, "restored")
	res = runStow(t, nil, "restore", "--repo", repo, "--password-file", pwFile, "--snapshot", "latest", "--target", target)
	if res.code != 0 {
		t.Fatalf("restore: %s", res)
	}
	testenv.RequireSameTree(t, src, target)

	// RESTIC_PASSWORD from the environment works too; a wrong one fails clearly.
	res = runStow(t, map[string]string{"RESTIC_PASSWORD": "wrong"}, "backup", "--repo", repo, src)
	if res.code != 1 || !strings.Contains(res.stderr, "wrong password") || strings.Contains(res.stderr, "initialized") {
		t.Errorf("wrong password: %s", res)
	}
	res = runStow(t, nil, "restore", "--repo", repo, "--password-file", pwFile, "--target", target, "--include", "../x")
	if res.code != 1 || !strings.Contains(res.stderr, "'..'") {
		t.Errorf("include with ..: %s", res)
	}
}

func TestIntegrationJobStepsAgainstMinIO(t *testing.T) {
	m := testenv.StartMinIO(t)
	dir := t.TempDir()
	env := m.Env()
	env["RESTIC_PASSWORD"] = "job password"
	// The first failing bucket-less probe must not leak into other tests: one bucket per test.
	repoFlags := []string{"--provider=s3", "--bucket=stow-jobs", "--endpoint=" + m.Endpoint, "--path=ns/app",
		"--region=", "--insecure-tls=false", "--max-connections=0", "--enable-cache=true",
		"--scratch-dir=" + filepath.Join(dir, "scratch"), "--output-dir=" + filepath.Join(dir, "output"),
		"--namespace=apps", "--invoker-kind=BackupConfiguration", "--invoker-name=nightly",
		"--target-kind=PersistentVolumeClaim", "--target-name=data", "--target-namespace=apps", "--repository=repo"}
	termLog := filepath.Join(dir, "termination-log")
	result := func(t *testing.T) jobresult.Result {
		t.Helper()
		b, err := os.ReadFile(termLog)
		if err != nil {
			t.Fatal(err)
		}
		r, err := jobresult.Decode(string(b))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	step := func(t *testing.T, env map[string]string, args ...string) (stowRun, jobresult.Result) {
		t.Helper()
		_ = os.Remove(termLog)
		res := runStow(t, env, append(append(args, repoFlags...), "--termination-log="+termLog)...)
		return res, result(t)
	}

	mount := filepath.Join(dir, "stow-data")
	testenv.WriteFile(t, filepath.Join(mount, "db", "data.bin"), testenv.RandomBytes(3, 1<<20), 0o600)
	testenv.WriteFile(t, filepath.Join(mount, "conf.yaml"), []byte("a: 1\n"), 0o644)

	backup := func(t *testing.T) (stowRun, jobresult.Result) {
		return step(t, env, "backup-pvc", "--hostname=host-0", "--backupsession=nightly-1",
			"--backup-paths="+mount, "--mount-path="+mount, "--exclude=*.tmp", "--args=")
	}
	run, res := backup(t)
	if run.code != 0 || res.Error != "" || res.Step != "backup-pvc" || res.Host != "host-0" {
		t.Fatalf("backup-pvc: %s\nresult %+v", run, res)
	}
	if res.RepositoryInitialized == nil || !*res.RepositoryInitialized || len(res.Snapshots) != 1 || res.Snapshots[0].Path != mount ||
		*res.Snapshots[0].FileStats.NewFiles != 2 || res.Snapshots[0].TotalSize != "1.000 MiB" {
		t.Errorf("backup-pvc result: %+v", res)
	}
	if _, err := os.Stat(filepath.Join(dir, "output", "output.json")); err != nil {
		t.Errorf("no output.json: %v", err)
	}

	statusArgs := []string{"update-status", "--hostname=host-0", "--backupsession=nightly-1", "--restoresession=",
		"--retention-keep-last=1", "--retention-keep-hourly=0", "--retention-keep-daily=0", "--retention-keep-weekly=0",
		"--retention-keep-monthly=0", "--retention-keep-yearly=0", "--retention-keep-tags=", "--retention-prune=true",
		"--retention-dry-run=false", "--integrity-check=true", "--metrics-enabled=true",
		"--metrics-pushgateway-url=http://127.0.0.1:1", "--repository-namespace=apps"}
	run, res = step(t, env, statusArgs...)
	if run.code != 0 || res.Error != "" || res.Step != "update-status" {
		t.Fatalf("update-status: %s\nresult %+v", run, res)
	}
	if res.Retention == nil || res.Retention.SnapshotsKept != 1 || res.Integrity == nil || !*res.Integrity ||
		len(res.Snapshots) != 1 || res.MetricsPushed != nil { // the operator pushes metrics, Jobs do not
		t.Errorf("update-status result: %+v (retention %+v)", res, res.Retention)
	}

	// Second backup and retention keep-last 1: one removed.
	testenv.WriteFile(t, filepath.Join(mount, "conf.yaml"), []byte("a: 2\n"), 0o644)
	if run, res = backup(t); run.code != 0 || *res.RepositoryInitialized != true {
		t.Fatalf("second backup-pvc: %s", run)
	}
	if run, res = step(t, env, statusArgs...); run.code != 0 || res.Retention.SnapshotsKept != 1 || res.Retention.SnapshotsRemoved != 1 {
		t.Fatalf("second update-status: %s\n%+v", run, res.Retention)
	}

	// Restore with no rules into another mount path: latest of host-0.
	restoreMount := filepath.Join(dir, "restore-mount")
	restoreArgs := []string{"restore-pvc", "--hostname=host-0", "--restoresession=rs", "--mount-path=" + restoreMount,
		"--source-hostname=", "--restore-paths=", "--snapshots=", "--include=", "--exclude=", "--args="}
	run, res = step(t, env, restoreArgs...)
	if run.code != 0 || res.Error != "" || len(res.Snapshots) != 1 {
		t.Fatalf("restore-pvc: %s\n%+v", run, res)
	}
	testenv.RequireSameTree(t, mount, restoreMount)
	run, res = step(t, env, "update-status", "--hostname=host-0", "--restoresession=rs", "--metrics-enabled=false")
	if run.code != 0 || res.Step != "update-status" || res.Error != "" || res.Retention != nil {
		t.Errorf("restore update-status: %s\n%+v", run, res)
	}

	// Nothing for an unknown source host: a failure, never an empty success.
	run, res = step(t, env, "restore-pvc", "--hostname=host-0", "--source-hostname=ghost", "--mount-path="+filepath.Join(dir, "empty"))
	if run.code != 1 || !strings.Contains(res.Error, "no snapshot found for host ghost") || !strings.Contains(run.stderr, "no snapshot found for host ghost") {
		t.Errorf("restore of unknown host: %s\n%+v", run, res)
	}
	// restore-paths and explicit snapshots.
	run, res = step(t, env, "restore-pvc", "--restore-paths="+mount, "--mount-path="+filepath.Join(dir, "byPath"), "--include=/db")
	if run.code != 0 {
		t.Fatalf("restore by path: %s", run)
	}
	if _, err := os.Stat(filepath.Join(dir, "byPath", "db", "data.bin")); err != nil {
		t.Errorf("included file missing: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "byPath", "conf.yaml")); !os.IsNotExist(err) {
		t.Errorf("conf.yaml restored although not included")
	}
	run, _ = step(t, env, "restore-pvc", "--snapshots="+res.Snapshots[0].Name, "--mount-path="+filepath.Join(dir, "byID"))
	if run.code != 0 {
		t.Fatalf("restore by id: %s", run)
	}
	testenv.RequireSameTree(t, mount, filepath.Join(dir, "byID"))
	run, res = step(t, env, "restore-pvc", "--mount-path="+filepath.Join(dir, "x"), "--include=../../etc")
	if run.code != 1 || !strings.Contains(res.Error, "'..'") {
		t.Errorf("include with ..: %s", run)
	}

	// A session that did nothing says so: include patterns that match no
	// file, and excludes that leave nothing of a full volume, fail.
	run, res = step(t, env, "restore-pvc", "--restore-paths="+mount, "--mount-path="+filepath.Join(dir, "none"), "--include=/no-such-file")
	if run.code != 1 || !strings.Contains(res.Error, "matched no file") {
		t.Errorf("restore whose include matches nothing: %s\n%+v", run, res)
	}
	run, res = step(t, env, "backup-pvc", "--hostname=host-0", "--backupsession=nightly-x",
		"--backup-paths="+mount, "--mount-path="+mount, "--exclude=*", "--args=")
	if run.code != 1 || !strings.Contains(res.Error, "left no file of "+mount) {
		t.Errorf("backup whose excludes leave nothing: %s\n%+v", run, res)
	}

	// A wrong password: a clear failure, nothing initialized.
	bad := m.Env()
	bad["RESTIC_PASSWORD"] = "not it"
	run, res = step(t, bad, "backup-pvc", "--backup-paths="+mount)
	if run.code != 1 || !strings.Contains(res.Error, "wrong password") || res.RepositoryInitialized == nil || *res.RepositoryInitialized {
		t.Errorf("wrong password: %s\n%+v", run, res)
	}
	if strings.Contains(run.stderr, "not it") || strings.Contains(run.stdout, "not it") {
		t.Errorf("password in the logs: %s", run)
	}
	// update-status after a failed step reports the failure and exits non-zero.
	run, res = step(t, env, statusArgs...)
	if run.code != 1 || !strings.Contains(res.Error, "backup-pvc: ") || res.Retention != nil {
		t.Errorf("update-status after a failed backup: %s\n%+v", run, res)
	}
}

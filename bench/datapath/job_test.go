package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stowhq/stow/pkg/jobenv"
)

func hasPrefix(list []string, prefix string) (string, bool) {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return s, true
		}
	}
	return "", false
}

func TestBackupStepIsTheJobs(t *testing.T) {
	st, err := backupStep("/b/repo", "/b/data", "/b/scratch", "bench-full", "pw")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stow %s", strings.Join(st.args, " "))
	if st.args[0] != "backup-pvc" {
		t.Fatalf("command %q, want backup-pvc", st.args[0])
	}
	for _, want := range []string{"--provider=local", "--bucket=/b/repo", "--backup-paths=/b/data", "--mount-path=/b/data",
		"--scratch-dir=/b/scratch", "--output-dir=/b/scratch/output", "--enable-cache=true", "--backupsession=bench-full",
		"--termination-log=/b/scratch/termination-log"} {
		if !slices.Contains(st.args, want) {
			t.Errorf("args lack %s: %q", want, st.args)
		}
	}
	for _, a := range st.args {
		if strings.Contains(a, "/stow-tmp") {
			t.Errorf("arg %s still points into the pod's scratch mount", a)
		}
	}
	for _, want := range []string{"RESTIC_PASSWORD=pw", "STOW_INVOKER_KIND=BackupConfiguration", "STOW_TARGET_NAME=" + benchPVC} {
		if !slices.Contains(st.env, want) {
			t.Errorf("env lacks %s: %q", want, st.env)
		}
	}
	if _, ok := hasPrefix(st.env, jobenv.LockDeadline+"="); !ok {
		t.Errorf("env lacks the lock deadline: %q", st.env)
	}
}

func TestRestoreStepIsTheJobs(t *testing.T) {
	snap := jobenv.ResolvedSnapshot{ID: "0123456789abcdef", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Paths: []string{"/b/data"}, MountPath: "/b/data"}
	st, err := restoreStep("/b/repo", "/b/restore", "/b/scratch", "pw", []jobenv.ResolvedSnapshot{snap})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stow %s", strings.Join(st.args, " "))
	if st.args[0] != "restore-pvc" {
		t.Fatalf("command %q, want restore-pvc", st.args[0])
	}
	for _, want := range []string{"--bucket=/b/repo", "--mount-path=/b/restore", "--snapshots=", "--restore-paths=", "--scratch-dir=/b/scratch"} {
		if !slices.Contains(st.args, want) {
			t.Errorf("args lack %s: %q", want, st.args)
		}
	}
	resolved, ok := hasPrefix(st.env, jobenv.Resolved+"=")
	if !ok || !strings.Contains(resolved, snap.ID) {
		t.Errorf("env lacks the resolved snapshot: %q", st.env)
	}
}

func TestRemapScratch(t *testing.T) {
	for in, want := range map[string]string{
		"--scratch-dir=/stow-tmp":       "--scratch-dir=/s",
		"--output-dir=/stow-tmp/output": "--output-dir=/s/output",
		"--path=/stow-tmpfoo":           "--path=/stow-tmpfoo",
		"--mount-path=/stow-data":       "--mount-path=/stow-data",
		"backup-pvc":                    "backup-pvc",
	} {
		if got := remapScratch(in, "/s"); got != want {
			t.Errorf("remapScratch(%q) = %q, want %q", in, got, want)
		}
	}
}

package resolve

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
)

// spec.task.params: [{name: TARGET_NAME, value: other-pvc}] made the Job
// mount other-pvc while its snapshot was tagged, and every controller check
// made, for spec.target.ref. A parameter naming any variable Stow computes is
// refused, for backups and restores, with the parameter named.
func TestTaskParamsMayNotReplaceComputedVariables(t *testing.T) {
	tasks, fns := builtins()
	bc := backupConfig()
	bc.Spec.Task.Params = []v1beta1.Param{{Name: VarTargetName, Value: "other-pvc"}}
	_, err := BackupJob(bc, session(), s3Repo(), tasks[v1beta1.TaskPVCBackup], fns, opts)
	if err == nil || !strings.Contains(err.Error(), `spec.task.params[0].name: Invalid value: "TARGET_NAME"`) || !strings.Contains(err.Error(), "spec.target.ref") {
		t.Fatalf("TARGET_NAME param: %v; want a refusal naming the param and spec.target.ref", err)
	}
	for _, name := range Computed() {
		bc := backupConfig()
		bc.Spec.Task.Params = []v1beta1.Param{{Name: "outputDir", Value: "/stow-tmp/o"}, {Name: name, Value: "x"}}
		if _, err := BackupJob(bc, session(), s3Repo(), tasks[v1beta1.TaskPVCBackup], fns, opts); err == nil || !strings.Contains(err.Error(), `params[1].name: Invalid value: "`+name+`"`) {
			t.Errorf("backup with param %s: %v", name, err)
		}
		if errs := ValidateInvoker(bc.Spec.Task, bc.Spec.RuntimeSettings); len(errs) != 1 {
			t.Errorf("ValidateInvoker with param %s: %v", name, errs)
		}
		rs := restoreSession()
		rs.Spec.Task.Params = []v1beta1.Param{{Name: name, Value: "x"}}
		if _, _, err := RestoreJobs(rs, s3Repo(), tasks[v1beta1.TaskPVCRestore], fns, nil, opts); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("restore with param %s: %v", name, err)
		}
	}
}

// Every variable the resolver computes is either refused as a Task
// parameter or a documented tunable, so a new variable cannot slip past.
func TestComputedVariablesAreListed(t *testing.T) {
	rs := restoreSession()
	full := backupConfig()
	full.Spec.RetentionPolicy = v1beta1.RetentionPolicy{Name: "all", KeepLast: 1, KeepHourly: 1, KeepDaily: 1, KeepWeekly: 1, KeepMonthly: 1, KeepYearly: 1, KeepTags: []string{"a"}}
	for _, vars := range []map[string]string{
		BackupVars(full, session(), s3Repo(), opts),
		RestoreVars(rs, s3Repo(), &v1beta1.Rule{Paths: []string{"/stow-data"}, Include: []string{"a"}, Exclude: []string{"b"}, SourceHost: "h"}, opts),
		{VarAddonImage: "", VarHookType: "", VarPodOrdinal: ""},
	} {
		for k := range vars {
			if _, ok := computed[k]; !ok && !tunable[k] {
				t.Errorf("the resolver computes %s, which is neither refused as a Task parameter nor a tunable", k)
			}
		}
	}
}

// Parameters of the Task's own (Stash's outputDir, targetVolume, args and
// the like) and INTEGRITY_CHECK still reach the templates.
func TestTaskParamsOfTheTaskStillWork(t *testing.T) {
	tasks, fns := builtins()
	bc := backupConfig()
	bc.Spec.Task.Params = []v1beta1.Param{{Name: "outputDir", Value: "/stow-tmp/elsewhere"}, {Name: VarIntegrityCheck, Value: "true"}, {Name: "args", Value: "--x"}}
	job, err := BackupJob(bc, session(), s3Repo(), tasks[v1beta1.TaskPVCBackup], fns, opts)
	if err != nil {
		t.Fatal(err)
	}
	var status corev1.Container
	for _, c := range allContainers(job) {
		if arg(t, c, "--output-dir") != "/stow-tmp/elsewhere" {
			t.Errorf("container %s: --output-dir=%s", c.Name, arg(t, c, "--output-dir"))
		}
		if c.Name == "update-status-1" {
			status = c
		}
	}
	if got := arg(t, status, "--integrity-check"); got != "true" {
		t.Errorf("--integrity-check=%s, want true", got)
	}
}

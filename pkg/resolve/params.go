package resolve

import (
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/jobenv"
)

// VarPodOrdinal is the restore ordinal of a Job restoring into new PVCs
// (target.volumeClaimTemplates): substituted into the templates and set as
// an environment variable of the Job's containers.
const VarPodOrdinal = "POD_ORDINAL"

// computed are the variables Stow computes for a Job, each with where its
// value comes from. spec.task.params may not name one (ValidateTaskParams):
// Stash let a parameter override them, so that, say, TARGET_NAME mounted
// another PVC while the snapshot was tagged, the target checked and the
// target's backups paused as spec.target.ref's; NAMESPACE or
// REPOSITORY_SECRET_NAME named another namespace or Secret. The value is set
// through its own field, which the operator checks, instead.
var computed = map[string]string{
	VarNamespace:                 "the session's namespace",
	VarBackupSession:             "the BackupSession",
	VarRestoreSession:            "the RestoreSession",
	VarInvokerKind:               "the invoker",
	VarInvokerName:               "the invoker",
	VarRepositoryName:            "spec.repository",
	VarRepositoryNamespace:       "spec.repository",
	VarRepositoryProvider:        "the Repository's spec.backend",
	VarRepositoryBucket:          "the Repository's spec.backend",
	VarRepositoryPrefix:          "the Repository's spec.backend",
	VarRepositoryEndpoint:        "the Repository's spec.backend",
	VarRepositoryRegion:          "the Repository's spec.backend",
	VarRepositoryInsecureTLS:     "the Repository's spec.backend",
	VarRepositorySecretName:      "the Repository's spec.backend.storageSecretName",
	VarRepositorySecretNamespace: "the Repository's namespace",
	VarMaxConnections:            "the Repository's spec.backend",
	VarTargetKind:                "spec.target.ref",
	VarTargetName:                "spec.target.ref (or the first volumeClaimTemplate)",
	VarTargetNamespace:           "spec.target.ref",
	VarTargetPaths:               "spec.target.paths",
	VarTargetMountPath:           "spec.target.volumeMounts",
	VarExcludePatterns:           "spec.target.exclude, or a restore rule's exclude",
	VarIncludePatterns:           "a restore rule's include",
	VarDriverArgs:                "spec.target.args",
	VarHostname:                  "spec.target.alias",
	VarSourceHostname:            "a restore rule's sourceHost",
	VarRestorePaths:              "a restore rule's paths",
	VarRestoreSnapshots:          "a restore rule's snapshots",
	VarTargetAppReplicas:         "spec.target.replicas",
	VarEnableCache:               "spec.tempDir.disableCaching",
	VarInterimDataDir:            "spec.interimVolumeTemplate",
	VarRetentionKeepLast:         "spec.retentionPolicy",
	VarRetentionKeepHourly:       "spec.retentionPolicy",
	VarRetentionKeepDaily:        "spec.retentionPolicy",
	VarRetentionKeepWeekly:       "spec.retentionPolicy",
	VarRetentionKeepMonthly:      "spec.retentionPolicy",
	VarRetentionKeepYearly:       "spec.retentionPolicy",
	VarRetentionKeepTags:         "spec.retentionPolicy",
	VarRetentionPrune:            "spec.retentionPolicy",
	VarRetentionDryRun:           "spec.retentionPolicy",
	VarMetricsEnabled:            "the operator",
	VarPushgatewayURL:            "the operator",
	VarPrometheusJobName:         "the operator",
	VarStowImage:                 "the operator",
	VarAddonImage:                "the step's Function",
	VarHookType:                  "the hook",
	VarPodOrdinal:                "the restore ordinal",
}

// tunable are variables Stow computes that a Task parameter may still set,
// as Stash documents: INTEGRITY_CHECK=true checks the repository after
// every backup (docs/maintenance.md).
var tunable = map[string]bool{VarIntegrityCheck: true}

// Computed returns the names of the variables spec.task.params may not
// set, sorted.
func Computed() []string {
	out := make([]string, 0, len(computed))
	for k := range computed {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ValidateTaskParams refuses spec.task.params (at p) that name a variable
// Stow computes; parameters of the Task's own (outputDir, args, ...) and
// INTEGRITY_CHECK stay the user's.
func ValidateTaskParams(params []v1beta1.Param, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, param := range params {
		if from, ok := computed[param.Name]; ok {
			errs = append(errs, field.Invalid(p.Index(i).Child("name"), param.Name,
				fmt.Sprintf("Stow computes %s (from %s); a Task parameter may not replace it (docs/security.md)", param.Name, from)))
		}
	}
	return errs
}

// ValidateInvoker checks what a BackupConfiguration or RestoreSession spec
// hands its Jobs directly, beyond what the API schema and podpolicy check:
// Task parameters (ValidateTaskParams) and the environment of
// runtimeSettings.container (ValidateEnv). The controllers report the
// result as ValidationPassed=False (Invalid), and the resolver refuses to
// build a Job from such a spec.
func ValidateInvoker(task v1beta1.TaskRef, rt v1beta1.RuntimeSettings) field.ErrorList {
	errs := ValidateTaskParams(task.Params, field.NewPath("spec", "task", "params"))
	if rt.Container != nil {
		errs = append(errs, ValidateEnv(rt.Container.Env, rt.Container.EnvFrom, field.NewPath("spec", "runtimeSettings", "container"))...)
	}
	return errs
}

// ValidateEnv refuses environment variables (env, at p) that control Stow's
// runner, restic or the loader (jobenv.Reserved: STOW_*, RESTIC_*, LD_*,
// PATH, HOME, TMPDIR, ...), and envFrom sources whose prefix could make
// such a variable from some key: STOW_RESTIC=/stow-data/x made the runner
// execute a file of the user's volume as restic, with the repository's
// credentials, for a user without pod rights.
func ValidateEnv(env []corev1.EnvVar, envFrom []corev1.EnvFromSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, e := range env {
		if why := jobenv.Reserved(e.Name); why != "" {
			errs = append(errs, field.Invalid(p.Child("env").Index(i).Child("name"), e.Name,
				fmt.Sprintf("%s controls %s; runtimeSettings may not set it (docs/security.md)", e.Name, why)))
		}
	}
	for i, e := range envFrom {
		if why := jobenv.SafePrefix(e.Prefix); why != "" {
			errs = append(errs, field.Invalid(p.Child("envFrom").Index(i).Child("prefix"), e.Prefix,
				fmt.Sprintf("needs a prefix no reserved variable starts with, such as APP_: %s (docs/security.md)", why)))
		}
	}
	return errs
}

package resolve

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/podpolicy"
)

// The audit's configuration: STOW_RESTIC made the runner execute a file of
// the user's volume as restic, and REST_SERVER_PASSWORD came from a Secret
// the writer may not read. A variable that controls the runner, restic or
// the loader is refused, naming it; the Secret reference is an ask that
// names the Secret (the admission policy needs get on it).
func TestUserEnvMayNotSteerTheRunner(t *testing.T) {
	tasks, fns := builtins()
	bc := backupConfig()
	bc.Spec.RuntimeSettings.Container = &v1beta1.ContainerRuntimeSettings{Env: []corev1.EnvVar{
		{Name: "STOW_RESTIC", Value: "/stow-data/bin/anything"},
		{Name: "REST_SERVER_USERNAME", Value: "x"},
		{Name: "REST_SERVER_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "db-admin"}, Key: "password"}}},
	}}
	repo := &v1beta1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: "demo"},
		Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{StorageSecretName: "mine",
			Rest: &v1beta1.RestServerSpec{URL: "http://attacker.example:8000/r"}}},
	}
	_, err := BackupJob(bc, session(), repo, tasks[v1beta1.TaskPVCBackup], fns, opts)
	if err == nil || !strings.Contains(err.Error(), `spec.runtimeSettings.container.env[0].name: Invalid value: "STOW_RESTIC": STOW_RESTIC controls Stow's runner`) {
		t.Fatalf("STOW_RESTIC: %v", err)
	}
	asks, err := podpolicy.Asks(podpolicy.BackupConfigurations, bc)
	if err != nil || len(asks) != 1 || asks[0].Class != podpolicy.Secrets || asks[0].Names[0] != "db-admin" {
		t.Fatalf("asks %v (%v); want one for Secret db-admin", asks, err)
	}

	// Without STOW_RESTIC it builds: whether its writer may name db-admin
	// is the admission policy's to say.
	bc.Spec.RuntimeSettings.Container.Env = bc.Spec.RuntimeSettings.Container.Env[1:]
	if _, err := BackupJob(bc, session(), repo, tasks[v1beta1.TaskPVCBackup], fns, opts); err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"STOW_NAMESPACE", "STOW_RESOLVED_SNAPSHOTS", "RESTIC_PASSWORD_COMMAND", "RESTIC_REPOSITORY", "PATH", "HOME", "TMPDIR",
		"LD_PRELOAD", "LD_LIBRARY_PATH", "SSL_CERT_FILE", "CA_CERT_DATA", "GODEBUG", "POD_ORDINAL", "NICE_ADJUSTMENT"} {
		env := []corev1.EnvVar{{Name: "TZ", Value: "UTC"}, {Name: name, Value: "x"}}
		bc := backupConfig()
		bc.Spec.RuntimeSettings.Container = &v1beta1.ContainerRuntimeSettings{Env: env}
		want := `spec.runtimeSettings.container.env[1].name: Invalid value: "` + name + `"`
		if _, err := BackupJob(bc, session(), s3Repo(), tasks[v1beta1.TaskPVCBackup], fns, opts); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("backup with %s: %v", name, err)
		}
		rs := restoreSession()
		rs.Spec.RuntimeSettings.Container = &v1beta1.ContainerRuntimeSettings{Env: env}
		if _, _, err := RestoreJobs(rs, s3Repo(), tasks[v1beta1.TaskPVCRestore], fns, nil, opts); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("restore with %s: %v", name, err)
		}
		if errs := ValidateInvoker(rs.Spec.Task, rs.Spec.RuntimeSettings); len(errs) != 1 {
			t.Errorf("ValidateInvoker with %s: %v", name, errs)
		}
	}

	// Other variables (a proxy, the time zone) still reach every container.
	bc = backupConfig()
	bc.Spec.RuntimeSettings.Container = &v1beta1.ContainerRuntimeSettings{Env: []corev1.EnvVar{{Name: "HTTPS_PROXY", Value: "http://proxy:3128"}, {Name: "TZ", Value: "UTC"}}}
	for _, c := range allContainers(mustBackupJob(t, bc, s3Repo())) {
		if env := envOf(c); env["HTTPS_PROXY"] != "http://proxy:3128" || env["TZ"] != "UTC" {
			t.Errorf("container %s: env %v", c.Name, env)
		}
	}
}

func envOf(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

// envFrom's keys are not known when the Job is made (and may change before
// it starts): a source must have a prefix no reserved name starts with.
func TestEnvFromNeedsASafePrefix(t *testing.T) {
	tasks, fns := builtins()
	from := func(prefix string) []corev1.EnvFromSource {
		return []corev1.EnvFromSource{{Prefix: prefix, ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}}
	}
	for prefix, want := range map[string]string{"": "without a prefix", "RESTIC_": "restic's own settings", "PA": "PATH", "S": "STOW_*"} {
		bc := backupConfig()
		bc.Spec.RuntimeSettings.Container = &v1beta1.ContainerRuntimeSettings{EnvFrom: from(prefix)}
		_, err := BackupJob(bc, session(), s3Repo(), tasks[v1beta1.TaskPVCBackup], fns, opts)
		if err == nil || !strings.Contains(err.Error(), `spec.runtimeSettings.container.envFrom[0].prefix: Invalid value: "`+prefix+`"`) || !strings.Contains(err.Error(), want) {
			t.Errorf("prefix %q: %v", prefix, err)
		}
	}
	bc := backupConfig()
	bc.Spec.RuntimeSettings.Container = &v1beta1.ContainerRuntimeSettings{EnvFrom: from("APP_")}
	for _, c := range allContainers(mustBackupJob(t, bc, s3Repo())) {
		if n := len(c.EnvFrom); n != 2 || c.EnvFrom[1].Prefix != "APP_" {
			t.Errorf("container %s: envFrom %+v", c.Name, c.EnvFrom)
		}
	}
}

// A Task or Function may put a parameter anywhere; a value from
// spec.task.params may fill in arguments but not decide which Secret,
// ConfigMap or volume the pod reads, what is mounted where, or the name of
// a variable: its writer was not checked for the object it names.
func TestTaskParamsMayNotChooseWhatThePodReads(t *testing.T) {
	fn := func(spec v1beta1.FunctionSpec) map[string]*v1beta1.Function {
		spec.Image = "img"
		return map[string]*v1beta1.Function{"fn": {ObjectMeta: metav1.ObjectMeta{Name: "fn"}, Spec: spec}}
	}
	task := func(vols ...corev1.Volume) *v1beta1.Task {
		return &v1beta1.Task{ObjectMeta: metav1.ObjectMeta{Name: "custom"}, Spec: v1beta1.TaskSpec{
			Steps: []v1beta1.FunctionRef{{Name: "fn", Params: []v1beta1.Param{{Name: "secretVolume", Value: "secret-volume"}}}}, Volumes: vols}}
	}
	secretVolume := corev1.Volume{Name: "${secretVolume}", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "${REPOSITORY_SECRET_NAME}"}}}
	mountSecret := fn(v1beta1.FunctionSpec{Args: []string{"--out=${outputDir:=/stow-tmp/o}"}, VolumeMounts: []corev1.VolumeMount{{Name: "${secretVolume}", MountPath: "/etc/repo"}}})
	tasks, builtinFns := builtins()
	for _, tc := range []struct {
		name   string
		task   *v1beta1.Task
		fns    map[string]*v1beta1.Function
		params []v1beta1.Param
		what   string // "" when allowed
	}{
		{"Stash's secretVolume and outputDir", task(secretVolume), mountSecret,
			[]v1beta1.Param{{Name: "secretVolume", Value: "mine"}, {Name: "outputDir", Value: "/stow-tmp/x"}}, ""},
		{"a Secret volume's name", task(corev1.Volume{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "${secret}"}}}),
			fn(v1beta1.FunctionSpec{}), []v1beta1.Param{{Name: "secret", Value: "db-admin"}}, `a volume {"secret":{"secretName":"db-admin"}}`},
		{"another PVC", task(corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "${pvc:=${TARGET_NAME}}"}}}),
			fn(v1beta1.FunctionSpec{}), []v1beta1.Param{{Name: "pvc", Value: "other-pvc"}}, `a volume {"persistentVolumeClaim":{"claimName":"other-pvc"}}`},
		{"a Secret for an env variable", task(), fn(v1beta1.FunctionSpec{RuntimeSettings: &v1beta1.ContainerRuntimeSettings{Env: []corev1.EnvVar{
			{Name: "PW", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "${s:=mine}"}, Key: "k"}}}}}}),
			[]v1beta1.Param{{Name: "s", Value: "db-admin"}}, `where variable PW of container fn-0 comes from`},
		{"a variable's name", task(), fn(v1beta1.FunctionSpec{RuntimeSettings: &v1beta1.ContainerRuntimeSettings{Env: []corev1.EnvVar{{Name: "${n:=X}", Value: "1"}}}}),
			[]v1beta1.Param{{Name: "n", Value: "STOW_RESTIC"}}, "variable STOW_RESTIC of container fn-0"},
		{"what is mounted at the target's path (built-in Task)", tasks[v1beta1.TaskPVCBackup], builtinFns,
			[]v1beta1.Param{{Name: "targetVolume", Value: v1beta1.TmpDirVolumeName}}, "what container pvc-backup-0 mounts at /stow-data"},
		{"a variable's value", task(), fn(v1beta1.FunctionSpec{RuntimeSettings: &v1beta1.ContainerRuntimeSettings{Env: []corev1.EnvVar{{Name: "LEVEL", Value: "${level:=1}"}}}}),
			[]v1beta1.Param{{Name: "level", Value: "9"}}, ""},
	} {
		bc := backupConfig()
		bc.Spec.Task.Params = tc.params
		_, err := BackupJob(bc, session(), s3Repo(), tc.task, tc.fns, opts)
		var pe *TaskParamError
		switch {
		case tc.what == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.what == "":
		case !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.what) || !strings.Contains(err.Error(), "spec.task.params[0] ("+tc.params[0].Name+")"):
			t.Errorf("%s: %v; want a TaskParamError saying %q", tc.name, err, tc.what)
		}
	}
	rs := restoreSession()
	rs.Spec.Task.Params = []v1beta1.Param{{Name: "targetVolume", Value: v1beta1.TmpDirVolumeName}}
	var pe *TaskParamError
	if _, _, err := RestoreJobs(rs, s3Repo(), tasks[v1beta1.TaskPVCRestore], builtinFns, nil, opts); !errors.As(err, &pe) {
		t.Errorf("restore with targetVolume: %v", err)
	}
}

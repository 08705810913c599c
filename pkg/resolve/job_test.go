package resolve

import (
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/builtin"
	"github.com/stowhq/stow/pkg/jobenv"
)

const image = "example.org/stow:test"

var opts = Options{Image: image, PushgatewayURL: "http://stow-operator.stow:56789", ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}}}

func s3Repo() *v1beta1.Repository {
	return &v1beta1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: "demo"},
		Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{
			StorageSecretName: "s3-secret",
			S3:                &v1beta1.S3Spec{Endpoint: "http://127.0.0.1:9000", Bucket: "bkt", Prefix: "pvc/data", Region: "us-east-1", InsecureTLS: true},
		}},
	}
}

func localRepo() *v1beta1.Repository {
	return &v1beta1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: "local", Namespace: "demo"},
		Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{
			StorageSecretName: "local-secret",
			Local: &v1beta1.LocalSpec{
				VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "repo-pvc"}},
				MountPath:    "/repo", SubPath: "sub",
			},
		}},
	}
}

func backupConfig() *v1beta1.BackupConfiguration {
	return &v1beta1.BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "nfs-backup", Namespace: "demo", UID: "bc-uid"},
		Spec: v1beta1.BackupConfigurationSpec{
			Schedule:   "*/5 * * * *",
			Repository: v1beta1.ObjectRef{Name: "repo"},
			Target: &v1beta1.BackupTarget{
				Ref:     v1beta1.TargetRef{Name: "nfs-pvc"},
				Exclude: []string{"*.tmp", `we"ird`},
			},
			RetentionPolicy: v1beta1.RetentionPolicy{Name: "keep", KeepLast: 5, KeepDaily: 0, Prune: true},
		},
	}
}

func session() *v1beta1.BackupSession {
	return &v1beta1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{Name: "nfs-backup-1700000000", Namespace: "demo", UID: "s-uid"},
		Spec:       v1beta1.BackupSessionSpec{Invoker: v1beta1.BackupInvokerRef{Kind: v1beta1.KindBackupConfiguration, Name: "nfs-backup"}},
	}
}

func builtins() (map[string]*v1beta1.Task, map[string]*v1beta1.Function) {
	tasks := map[string]*v1beta1.Task{}
	for _, t := range builtin.Tasks() {
		tasks[t.Name] = t
	}
	fns := map[string]*v1beta1.Function{}
	for _, f := range builtin.Functions(image) {
		fns[f.Name] = f
	}
	return tasks, fns
}

func mustBackupJob(t *testing.T, bc *v1beta1.BackupConfiguration, repo *v1beta1.Repository) *batchv1.Job {
	t.Helper()
	tasks, fns := builtins()
	job, err := BackupJob(bc, session(), repo, tasks[v1beta1.TaskPVCBackup], fns, opts)
	if err != nil {
		t.Fatalf("BackupJob: %v", err)
	}
	return job
}

func allContainers(j *batchv1.Job) []corev1.Container {
	p := j.Spec.Template.Spec
	return append(append([]corev1.Container(nil), p.InitContainers...), p.Containers...)
}

func containerNames(cs []corev1.Container) []string {
	var n []string
	for _, c := range cs {
		n = append(n, c.Name)
	}
	return n
}

func arg(t *testing.T, c corev1.Container, flag string) string {
	t.Helper()
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	t.Fatalf("container %s has no %s flag in %q", c.Name, flag, c.Args)
	return ""
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`)

// Every variable the built-in Functions and Tasks use must be one the
// resolver provides (or a step param), and nothing may stay unsubstituted.
func TestBuiltinVariablesAreProvided(t *testing.T) {
	tasks, fns := builtins()
	provided := map[string]bool{}
	rs := restoreSession()
	full := backupConfig() // RETENTION_* are set only when > 0: set them all
	full.Spec.RetentionPolicy = v1beta1.RetentionPolicy{Name: "all", KeepLast: 1, KeepHourly: 1, KeepDaily: 1, KeepWeekly: 1, KeepMonthly: 1, KeepYearly: 1, KeepTags: []string{"a"}}
	for _, vars := range []map[string]string{
		BackupVars(full, session(), s3Repo(), opts),
		RestoreVars(rs, s3Repo(), &v1beta1.Rule{Paths: []string{"/stow-data"}, Include: []string{"a"}, Exclude: []string{"b"}}, opts),
	} {
		for k := range vars {
			provided[k] = true
		}
	}
	for _, task := range tasks {
		for _, s := range task.Spec.Steps {
			for _, p := range s.Params {
				provided[p.Name] = true
			}
		}
	}
	var texts []string
	for _, f := range fns {
		texts = append(texts, f.Spec.Args...)
		for _, m := range f.Spec.VolumeMounts {
			texts = append(texts, m.Name, m.MountPath)
		}
	}
	for _, task := range tasks {
		for _, v := range task.Spec.Volumes {
			texts = append(texts, v.PersistentVolumeClaim.ClaimName)
		}
	}
	for _, txt := range texts {
		for _, m := range varRef.FindAllStringSubmatch(txt, -1) {
			if !provided[m[1]] {
				t.Errorf("built-in template %q uses ${%s}, which the resolver does not provide", txt, m[1])
			}
		}
	}

	job := mustBackupJob(t, backupConfig(), s3Repo())
	jobs, _, err := RestoreJobs(rs, s3Repo(), tasks[v1beta1.TaskPVCRestore], fns, nil, opts)
	if err != nil {
		t.Fatalf("RestoreJobs: %v", err)
	}
	for _, j := range append([]*batchv1.Job{job}, jobs...) {
		for _, c := range allContainers(j) {
			for _, a := range append(c.Args, c.Image) {
				if strings.Contains(a, "${") {
					t.Errorf("job %s container %s: unsubstituted %q", j.Name, c.Name, a)
				}
			}
		}
	}
}

func TestBackupVars(t *testing.T) {
	bc := backupConfig()
	bc.Spec.Target.VolumeMounts = []corev1.VolumeMount{{Name: "x", MountPath: "/data/"}}
	bc.Spec.Target.Alias = "nfs"
	bc.Spec.Target.Args = []string{"--one-file-system", "--tag=x"}
	bc.Spec.TempDir.DisableCaching = true
	v := BackupVars(bc, session(), s3Repo(), opts)
	want := map[string]string{
		VarNamespace: "demo", VarBackupSession: "nfs-backup-1700000000", VarInvokerKind: "BackupConfiguration", VarInvokerName: "nfs-backup",
		VarRepositoryName: "repo", VarRepositoryNamespace: "demo", VarRepositoryProvider: "s3", VarRepositoryBucket: "bkt",
		VarRepositoryPrefix: "pvc/data", VarRepositoryEndpoint: "http://127.0.0.1:9000", VarRepositoryRegion: "us-east-1",
		VarRepositoryInsecureTLS: "true", VarRepositorySecretName: "s3-secret", VarRepositorySecretNamespace: "demo", VarMaxConnections: "0",
		VarTargetKind: "PersistentVolumeClaim", VarTargetName: "nfs-pvc", VarTargetNamespace: "demo",
		VarTargetMountPath: "/data", VarTargetPaths: "/data", // follows the mount path
		VarExcludePatterns: `*.tmp,we"ird`, VarDriverArgs: "--one-file-system --tag=x", VarHostname: "nfs",
		VarEnableCache: "false", VarRetentionKeepLast: "5", VarRetentionPrune: "true", VarRetentionDryRun: "false",
		VarPushgatewayURL: opts.PushgatewayURL, VarMetricsEnabled: "true",
	}
	for k, w := range want {
		if v[k] != w {
			t.Errorf("%s = %q, want %q", k, v[k], w)
		}
	}
	if _, ok := v[VarRetentionKeepDaily]; ok {
		t.Errorf("RETENTION_KEEP_DAILY is set for keepDaily=0; only values > 0 are passed")
	}
	if bc.Spec.Target.Paths != nil {
		t.Errorf("BackupVars modified its input: paths = %v", bc.Spec.Target.Paths)
	}
	if v := BackupVars(backupConfig(), session(), s3Repo(), Options{}); v[VarMetricsEnabled] != "false" || v[VarHostname] != "host-0" || v[VarTargetPaths] != "/stow-data" {
		t.Errorf("defaults: METRICS_ENABLED=%q HOSTNAME=%q TARGET_PATHS=%q", v[VarMetricsEnabled], v[VarHostname], v[VarTargetPaths])
	}
}

func TestRepositoryVars(t *testing.T) {
	tests := []struct {
		name    string
		backend v1beta1.Backend
		want    map[string]string
	}{
		{"local", localRepo().Spec.Backend, map[string]string{VarRepositoryProvider: "local", VarRepositoryBucket: "/repo", VarRepositoryPrefix: ""}},
		{"gcs", v1beta1.Backend{GCS: &v1beta1.GCSSpec{Bucket: "g", Prefix: "p", MaxConnections: 4}}, map[string]string{VarRepositoryProvider: "gcs", VarRepositoryBucket: "g", VarMaxConnections: "4"}},
		{"azure", v1beta1.Backend{Azure: &v1beta1.AzureSpec{Container: "c", MaxConnections: 2}}, map[string]string{VarRepositoryBucket: "c", VarMaxConnections: "2"}},
		{"b2", v1beta1.Backend{B2: &v1beta1.B2Spec{Bucket: "b", Prefix: "x"}}, map[string]string{VarRepositoryBucket: "b", VarRepositoryPrefix: "x"}},
		{"swift", v1beta1.Backend{Swift: &v1beta1.SwiftSpec{Container: "s"}}, map[string]string{VarRepositoryBucket: "s"}},
		{"rest", v1beta1.Backend{Rest: &v1beta1.RestServerSpec{URL: "http://127.0.0.1:8000/user/repo"}}, map[string]string{
			VarRepositoryProvider: "rest", VarRepositoryEndpoint: "http://127.0.0.1:8000/user/repo", VarRepositoryBucket: "127.0.0.1:8000", VarRepositoryPrefix: "user/repo"}},
	}
	for _, tt := range tests {
		r := &v1beta1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "n"}, Spec: v1beta1.RepositorySpec{Backend: tt.backend}}
		v := RepositoryVars(r)
		for k, w := range tt.want {
			if v[k] != w {
				t.Errorf("%s: %s = %q, want %q", tt.name, k, v[k], w)
			}
		}
	}
}

// Precedence: step params < built-ins < spec.task.params < ADDON_IMAGE;
// spec.task.params may not name a built-in (TestTaskParamsMayNotReplaceComputedVariables).
func TestVariablePrecedence(t *testing.T) {
	task := &v1beta1.Task{ObjectMeta: metav1.ObjectMeta{Name: "custom"}, Spec: v1beta1.TaskSpec{Steps: []v1beta1.FunctionRef{{
		Name: "fn", Params: []v1beta1.Param{{Name: "P", Value: "step"}, {Name: "R", Value: "step"}, {Name: "HOSTNAME", Value: "step"},
			{Name: "NAMESPACE", Value: "step"}, {Name: "ADDON_IMAGE", Value: "step"}},
	}}}}
	fn := &v1beta1.Function{ObjectMeta: metav1.ObjectMeta{Name: "fn"}, Spec: v1beta1.FunctionSpec{
		Image: "img:${TAG:=1}",
		Args:  []string{"p=${P}", "r=${R}", "host=${HOSTNAME}", "ns=${NAMESPACE}", "addon=${ADDON_IMAGE}", "q=${Q:=dflt}"},
	}}
	bc := backupConfig()
	bc.Spec.Task.Params = []v1beta1.Param{{Name: "R", Value: "user"}, {Name: "TAG", Value: "2"}}
	job, err := BackupJob(bc, session(), s3Repo(), task, map[string]*v1beta1.Function{"fn": fn}, opts)
	if err != nil {
		t.Fatalf("BackupJob: %v", err)
	}
	c := job.Spec.Template.Spec.Containers[0]
	want := []string{"p=step", "r=user", "host=host-0", "ns=demo", "addon=img:2", "q=dflt"}
	if strings.Join(c.Args, " ") != strings.Join(want, " ") {
		t.Errorf("args = %q, want %q", c.Args, want)
	}
	if c.Image != "img:2" {
		t.Errorf("image = %q, want img:2", c.Image)
	}
}

// TestHooksAreNotContainers: hooks run outside the backup pod
// (pkg/controller/hookrun), so a Job with hooks has the same containers.
func TestHooksAreNotContainers(t *testing.T) {
	hook := &v1beta1.Handler{HTTPGet: &v1beta1.HTTPGetAction{Host: "127.0.0.1", Path: "/x"}}
	for _, hooks := range []*v1beta1.BackupHooks{nil, {PreBackup: hook, PostBackup: &v1beta1.PostHookHandler{Handler: *hook}}} {
		bc := backupConfig()
		bc.Spec.Hooks = hooks
		p := mustBackupJob(t, bc, s3Repo()).Spec.Template.Spec
		if got := containerNames(p.InitContainers); strings.Join(got, ",") != "pvc-backup-0" {
			t.Errorf("init containers = %v", got)
		}
		if len(p.Containers) != 1 || p.Containers[0].Name != "update-status-1" {
			t.Errorf("main containers = %v", containerNames(p.Containers))
		}
	}
}

func hasMount(c corev1.Container, name, path string) bool {
	for _, m := range c.VolumeMounts {
		if m.Name == name && m.MountPath == path {
			return true
		}
	}
	return false
}

func TestVolumesAndMounts(t *testing.T) {
	bc := backupConfig()
	bc.Spec.Target.VolumeMounts = []corev1.VolumeMount{{Name: "ignored", MountPath: "/data"}}
	size := resource.MustParse("2Gi")
	bc.Spec.TempDir = v1beta1.EmptyDirSettings{Medium: corev1.StorageMediumMemory, SizeLimit: &size}
	job := mustBackupJob(t, bc, s3Repo())
	p := job.Spec.Template.Spec
	vols := map[string]corev1.Volume{}
	for _, v := range p.Volumes {
		vols[v.Name] = v
	}
	if len(vols) != 2 {
		t.Errorf("volumes = %v, want stow-volume and stow-tmp-dir", p.Volumes)
	}
	if v := vols[v1beta1.TargetVolumeName]; v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "nfs-pvc" {
		t.Errorf("target volume = %+v", v)
	}
	if v := vols[v1beta1.TmpDirVolumeName]; v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory || v.EmptyDir.SizeLimit.Cmp(size) != 0 {
		t.Errorf("tmp volume = %+v", v)
	}
	for _, c := range allContainers(job) {
		if !hasMount(c, v1beta1.TmpDirVolumeName, v1beta1.TmpDirMountPath) {
			t.Errorf("%s lacks the tmp mount: %v", c.Name, c.VolumeMounts)
		}
		if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != "s3-secret" {
			t.Errorf("%s envFrom = %+v, want the storage secret", c.Name, c.EnvFrom)
		}
		if c.ImagePullPolicy != corev1.PullIfNotPresent || c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
			t.Errorf("%s pull policy %q termination policy %q", c.Name, c.ImagePullPolicy, c.TerminationMessagePolicy)
		}
	}
	backup := p.InitContainers[0]
	if !hasMount(backup, v1beta1.TargetVolumeName, "/data") {
		t.Errorf("backup step lacks the target mount at /data: %v", backup.VolumeMounts)
	}
	if got := arg(t, backup, "--backup-paths"); got != "/data" {
		t.Errorf("--backup-paths = %q, want /data", got)
	}
	if got := arg(t, backup, "--exclude"); got != `*.tmp,we"ird` {
		t.Errorf("--exclude = %q", got)
	}
}

func TestLocalBackend(t *testing.T) {
	job := mustBackupJob(t, backupConfig(), localRepo())
	var found bool
	for _, v := range job.Spec.Template.Spec.Volumes {
		if v.Name == v1beta1.LocalBackendVolumeName {
			found = v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == "repo-pvc"
		}
	}
	if !found {
		t.Errorf("local backend volume missing: %v", job.Spec.Template.Spec.Volumes)
	}
	for _, c := range allContainers(job) {
		ok := false
		for _, m := range c.VolumeMounts {
			ok = ok || m.Name == v1beta1.LocalBackendVolumeName && m.MountPath == "/repo" && m.SubPath == "sub"
		}
		if !ok {
			t.Errorf("%s lacks the local backend mount: %v", c.Name, c.VolumeMounts)
		}
		if got := arg(t, c, "--bucket"); got != "/repo" {
			t.Errorf("%s --bucket = %q, want /repo", c.Name, got)
		}
	}
}

func TestSecurityDefaultsAndOverrides(t *testing.T) {
	job := mustBackupJob(t, backupConfig(), s3Repo())
	p := job.Spec.Template.Spec
	sc := p.SecurityContext
	if sc == nil || !ptr.Deref(sc.RunAsNonRoot, false) || ptr.Deref(sc.RunAsUser, 0) != 65534 || ptr.Deref(sc.RunAsGroup, 0) != 65534 || sc.FSGroup != nil {
		t.Errorf("backup pod securityContext = %+v", sc)
	}
	if ptr.Deref(p.AutomountServiceAccountToken, true) {
		t.Errorf("automountServiceAccountToken must be false by default")
	}
	for _, c := range allContainers(job) {
		if c.SecurityContext == nil || ptr.Deref(c.SecurityContext.AllowPrivilegeEscalation, true) || len(c.SecurityContext.Capabilities.Drop) != 1 {
			t.Errorf("%s securityContext = %+v", c.Name, c.SecurityContext)
		}
	}
	if len(p.ImagePullSecrets) != 1 || p.ImagePullSecrets[0].Name != "regcred" {
		t.Errorf("imagePullSecrets = %v", p.ImagePullSecrets)
	}
	if p.RestartPolicy != corev1.RestartPolicyNever || ptr.Deref(job.Spec.BackoffLimit, -1) != 0 {
		t.Errorf("restartPolicy %q backoffLimit %v", p.RestartPolicy, job.Spec.BackoffLimit)
	}
	if job.Spec.ActiveDeadlineSeconds != nil {
		t.Errorf("activeDeadlineSeconds set without timeOut")
	}

	bc := backupConfig()
	bc.Spec.TimeOut = &v1beta1.Duration{Duration: 90 * time.Minute}
	bc.Spec.RuntimeSettings = v1beta1.RuntimeSettings{
		Pod: &v1beta1.PodRuntimeSettings{
			SecurityContext:              &corev1.PodSecurityContext{RunAsUser: ptr.To(int64(0))},
			AutomountServiceAccountToken: ptr.To(true),
			ServiceAccountName:           "mine",
			NodeSelector:                 map[string]string{"disk": "ssd"},
			PodLabels:                    map[string]string{"team": "a", v1beta1.LabelInvokerName: "spoofed"},
			PodAnnotations:               map[string]string{"note": "x"},
			ImagePullSecrets:             []corev1.LocalObjectReference{{Name: "other"}, {Name: "regcred"}},
		},
		Container: &v1beta1.ContainerRuntimeSettings{
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}},
			Env:       []corev1.EnvVar{{Name: "GOGC", Value: "50"}},
			Nice:      &v1beta1.NiceSettings{Adjustment: ptr.To(int32(5))},
			IONice:    &v1beta1.IONiceSettings{Class: ptr.To(int32(2)), ClassData: ptr.To(int32(4))},
		},
	}
	job = mustBackupJob(t, bc, s3Repo())
	p = job.Spec.Template.Spec
	if ptr.Deref(job.Spec.ActiveDeadlineSeconds, 0) != 5400 {
		t.Errorf("activeDeadlineSeconds = %v, want 5400", job.Spec.ActiveDeadlineSeconds)
	}
	if p.SecurityContext.RunAsNonRoot != nil || ptr.Deref(p.SecurityContext.RunAsUser, -1) != 0 || p.SecurityContext.FSGroup != nil {
		t.Errorf("pod securityContext override not applied as a whole: %+v", p.SecurityContext)
	}
	if !ptr.Deref(p.AutomountServiceAccountToken, false) || p.ServiceAccountName != "mine" || p.NodeSelector["disk"] != "ssd" {
		t.Errorf("pod settings not applied: automount %v sa %q nodeSelector %v", p.AutomountServiceAccountToken, p.ServiceAccountName, p.NodeSelector)
	}
	meta := job.Spec.Template.ObjectMeta
	if meta.Labels["team"] != "a" || meta.Labels[v1beta1.LabelInvokerName] != "nfs-backup" || meta.Annotations["note"] != "x" {
		t.Errorf("pod metadata = %+v", meta)
	}
	if len(p.ImagePullSecrets) != 2 {
		t.Errorf("imagePullSecrets not merged: %v", p.ImagePullSecrets)
	}
	for _, c := range allContainers(job) {
		// Root asked for at pod level: every capability but what reading
		// needs is dropped, and nothing contradicts runAsUser 0.
		if sc := c.SecurityContext; sc == nil || sc.RunAsNonRoot != nil || ptr.Deref(sc.AllowPrivilegeEscalation, true) ||
			sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || len(sc.Capabilities.Add) != 1 || sc.Capabilities.Add[0] != "DAC_OVERRIDE" {
			t.Errorf("%s: root container securityContext = %+v", c.Name, c.SecurityContext)
		}
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		if env["GOGC"] != "50" || env["NICE_ADJUSTMENT"] != "5" || env["IONICE_CLASS"] != "2" || env["IONICE_CLASS_DATA"] != "4" {
			t.Errorf("%s env = %v", c.Name, env)
		}
		if !c.Resources.Limits.Memory().Equal(resource.MustParse("1Gi")) {
			t.Errorf("%s resources = %v", c.Name, c.Resources)
		}
	}
}

func TestJobMetadata(t *testing.T) {
	bc := backupConfig()
	bc.Spec.Target.Ref.Name = strings.Repeat("p", 100)
	s := session()
	s.Name = strings.Repeat("s", 240)
	tasks, fns := builtins()
	long := strings.Repeat("f", 80) + ".v1"
	fns[long] = fns[v1beta1.FunctionUpdateStatus].DeepCopy()
	fns[long].Name = long
	task := tasks[v1beta1.TaskPVCBackup].DeepCopy()
	task.Spec.Steps[1].Name = long
	job, err := BackupJob(bc, s, s3Repo(), task, fns, opts)
	if err != nil {
		t.Fatalf("BackupJob: %v", err)
	}
	if errs := validation.IsDNS1123Label(job.Name); len(errs) > 0 {
		t.Errorf("job name %q: %v", job.Name, errs)
	}
	for _, c := range allContainers(job) {
		if errs := validation.IsDNS1123Label(c.Name); len(errs) > 0 {
			t.Errorf("container name %q: %v", c.Name, errs)
		}
	}
	for k, v := range job.Labels {
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			t.Errorf("label %s=%q: %v", k, v, errs)
		}
	}
	if len(job.OwnerReferences) != 1 || job.OwnerReferences[0].Kind != v1beta1.KindBackupSession || job.OwnerReferences[0].UID != "s-uid" || !ptr.Deref(job.OwnerReferences[0].Controller, false) {
		t.Errorf("owner references = %+v", job.OwnerReferences)
	}
	j := mustBackupJob(t, backupConfig(), s3Repo())
	if j.Name != "stow-backup-nfs-backup-1700000000" || j.Namespace != "demo" {
		t.Errorf("job = %s/%s", j.Namespace, j.Name)
	}
	for _, l := range []string{v1beta1.LabelInvokerName, v1beta1.LabelTargetName, v1beta1.LabelComponent, v1beta1.LabelBackupSession} {
		if j.Labels[l] == "" || j.Spec.Template.Labels[l] != j.Labels[l] {
			t.Errorf("label %s: job %q pod %q", l, j.Labels[l], j.Spec.Template.Labels[l])
		}
	}
}

func TestBuildErrors(t *testing.T) {
	tasks, fns := builtins()
	empty := &v1beta1.Task{ObjectMeta: metav1.ObjectMeta{Name: "empty"}}
	missing := tasks[v1beta1.TaskPVCBackup].DeepCopy()
	missing.Spec.Steps[0].Name = "nope"
	noSecret := s3Repo()
	noSecret.Spec.Backend.StorageSecretName = ""
	tests := []struct {
		name string
		task *v1beta1.Task
		repo *v1beta1.Repository
		want string
	}{
		{"no steps", empty, s3Repo(), `task "empty" has no steps`},
		{"unknown function", missing, s3Repo(), `function "nope" not found`},
		{"nil task", nil, s3Repo(), "task not given"},
		{"nil repo", tasks[v1beta1.TaskPVCBackup], nil, "repository not given"},
		{"no secret", tasks[v1beta1.TaskPVCBackup], noSecret, "has no storageSecretName"},
	}
	for _, tt := range tests {
		_, err := BackupJob(backupConfig(), session(), tt.repo, tt.task, fns, opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err = %v, want one line containing %q", tt.name, err, tt.want)
		}
	}
}

func restoreSession() *v1beta1.RestoreSession {
	return &v1beta1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Name: "restore", Namespace: "demo", UID: "rs-uid"},
		Spec: v1beta1.RestoreSessionSpec{
			Repository: v1beta1.ObjectRef{Name: "repo"},
			Target:     &v1beta1.RestoreTarget{Ref: v1beta1.TargetRef{Name: "nfs-pvc"}},
		},
	}
}

func TestRestoreVars(t *testing.T) {
	rs := restoreSession()
	tests := []struct {
		name string
		rule *v1beta1.Rule
		want map[string]string
	}{
		// No selecting rule: the runner restores this PVC's latest snapshot by
		// identity, so no host or snapshot is named.
		{"no rule restores this PVC's latest", nil, map[string]string{VarRestoreSnapshots: "", VarSourceHostname: "", VarHostname: "host-0", VarRestorePaths: ""}},
		{"sourceHost only", &v1beta1.Rule{SourceHost: "other"}, map[string]string{VarSourceHostname: "other", VarRestoreSnapshots: "", VarRestorePaths: ""}},
		{"sourceHost honoured", &v1beta1.Rule{SourceHost: "other", Paths: []string{"/stow-data/a", "/stow-data/b"}},
			map[string]string{VarSourceHostname: "other", VarRestorePaths: "/stow-data/a,/stow-data/b", VarRestoreSnapshots: ""}},
		{"snapshots", &v1beta1.Rule{Snapshots: []string{"abcd1234", "latest"}, Include: []string{"x"}, Exclude: []string{"y", "z"}},
			map[string]string{VarRestoreSnapshots: "abcd1234,latest", VarIncludePatterns: "x", VarExcludePatterns: "y,z", VarSourceHostname: "host-0"}},
		{"include only filters this PVC's latest", &v1beta1.Rule{Include: []string{"x"}}, map[string]string{VarRestoreSnapshots: "", VarSourceHostname: "", VarIncludePatterns: "x"}},
	}
	for _, tt := range tests {
		v := RestoreVars(rs, s3Repo(), tt.rule, opts)
		if v[VarRestoreSession] != "restore" || v[VarInvokerKind] != "RestoreSession" || v[VarTargetName] != "nfs-pvc" || v[VarTargetAppReplicas] != "1" {
			t.Errorf("%s: base vars wrong: %v", tt.name, v)
		}
		for k, w := range tt.want {
			if v[k] != w {
				t.Errorf("%s: %s = %q, want %q", tt.name, k, v[k], w)
			}
		}
	}
}

func TestRestoreJobs(t *testing.T) {
	tasks, fns := builtins()
	rs := restoreSession()
	rs.Spec.Target.VolumeMounts = []corev1.VolumeMount{{Name: "x", MountPath: "/data"}}
	rs.Spec.Target.Rules = []v1beta1.Rule{{SourceHost: "src", Snapshots: []string{"latest"}}}
	jobs, pvcs, err := RestoreJobs(rs, s3Repo(), tasks[v1beta1.TaskPVCRestore], fns, nil, opts)
	if err != nil || len(jobs) != 1 || len(pvcs) != 0 {
		t.Fatalf("RestoreJobs = %d jobs, %d pvcs, %v", len(jobs), len(pvcs), err)
	}
	j := jobs[0]
	p := j.Spec.Template.Spec
	if j.Name != "stow-restore-restore" || j.OwnerReferences[0].Kind != v1beta1.KindRestoreSession {
		t.Errorf("job %s owner %+v", j.Name, j.OwnerReferences)
	}
	if ptr.Deref(p.SecurityContext.RunAsUser, -1) != nobody || ptr.Deref(p.SecurityContext.RunAsGroup, -1) != nobody || ptr.Deref(p.AutomountServiceAccountToken, true) {
		t.Errorf("restore pod security = %+v automount %v", p.SecurityContext, p.AutomountServiceAccountToken)
	}
	// One container: restore-pvc reports its own result (pkg/builtin).
	if names := containerNames(allContainers(j)); strings.Join(names, ",") != "pvc-restore-0" || len(p.InitContainers) != 0 {
		t.Errorf("containers = %v, init containers %d; want pvc-restore-0 alone", names, len(p.InitContainers))
	}
	c := p.Containers[0]
	if arg(t, c, "--source-hostname") != "src" || arg(t, c, "--mount-path") != "/data" || arg(t, c, "--snapshots") != "latest" {
		t.Errorf("restore args = %q", c.Args)
	}
	if j.Labels[v1beta1.LabelComponent] != v1beta1.ComponentRestore || j.Labels[v1beta1.LabelRestoreSession] != "restore" {
		t.Errorf("labels = %v", j.Labels)
	}

	rs.Spec.Target.Rules = []v1beta1.Rule{{TargetHosts: []string{"elsewhere"}}}
	if _, _, err := RestoreJobs(rs, s3Repo(), tasks[v1beta1.TaskPVCRestore], fns, nil, opts); err == nil || !strings.Contains(err.Error(), `no rule matches host "host-0"`) {
		t.Errorf("unmatched rule: err = %v", err)
	}
}

func TestRestoreJobsVolumeClaimTemplates(t *testing.T) {
	tasks, fns := builtins()
	rs := restoreSession()
	rs.Spec.Target.Ref.Name = ""
	rs.Spec.Target.Replicas = ptr.To(int32(2))
	rs.Spec.Target.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{
		ObjectMeta: metav1.ObjectMeta{Name: "data-${POD_ORDINAL}"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}}
	jobs, pvcs, err := RestoreJobs(rs, s3Repo(), tasks[v1beta1.TaskPVCRestore], fns, nil, opts)
	if err != nil || len(jobs) != 2 || len(pvcs) != 2 {
		t.Fatalf("RestoreJobs = %d jobs, %d pvcs, %v", len(jobs), len(pvcs), err)
	}
	for ord, j := range jobs {
		wantPVC := []string{"data-0", "data-1"}[ord]
		wantJob := []string{"stow-restore-restore", "stow-restore-restore-1"}[ord]
		if pvcs[ord].Name != wantPVC || pvcs[ord].Namespace != "demo" {
			t.Errorf("pvc %d = %s/%s", ord, pvcs[ord].Namespace, pvcs[ord].Name)
		}
		if j.Name != wantJob {
			t.Errorf("job %d = %s, want %s", ord, j.Name, wantJob)
		}
		var claim string
		for _, v := range j.Spec.Template.Spec.Volumes {
			if v.Name == v1beta1.TargetVolumeName {
				claim = v.PersistentVolumeClaim.ClaimName
			}
		}
		if claim != wantPVC {
			t.Errorf("job %s mounts claim %q, want %q", j.Name, claim, wantPVC)
		}
		if got := arg(t, j.Spec.Template.Spec.Containers[0], "--target-name"); got != wantPVC {
			t.Errorf("job %s --target-name = %q", j.Name, got)
		}
	}
}

// TestRestoreJobsRefOrTemplates: a session naming both target.ref and
// volumeClaimTemplates (stored under an older schema, which admitted it) is
// refused: its Job restored into ref's PVC while the template's new PVC was
// created and mounted nowhere, and the restore succeeded.
func TestRestoreJobsRefOrTemplates(t *testing.T) {
	tasks, fns := builtins()
	rs := restoreSession() // target.ref.name: nfs-pvc
	rs.Spec.Target.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "fresh"}}}
	if errs := v1beta1.ValidateRestoreSession(rs); len(errs) == 0 {
		t.Error("ValidateRestoreSession admits target.ref.name with volumeClaimTemplates")
	}
	jobs, pvcs, err := RestoreJobs(rs, s3Repo(), tasks[v1beta1.TaskPVCRestore], fns, nil, opts)
	if err == nil || !strings.Contains(err.Error(), "target.ref.name and target.volumeClaimTemplates are both set") {
		t.Errorf("RestoreJobs: %d Jobs, %d PVCs, %v; want refused", len(jobs), len(pvcs), err)
	}
}

// TestRestoreJobsFanOutIsBounded: RestoreJobs builds every replica's Job and
// PVCs on every sync. replicas 2147483647 (admitted by the schema, which had
// only a minimum) made it allocate without end; 20,000 took 634 MiB, and
// the operator's limit is 256 MiB. Beyond MaxRestoreReplicas, or replicas
// times the size of what each is built from beyond MaxRestoreFanOutBytes,
// it refuses before building anything, for sessions stored under an older
// schema too.
func TestRestoreJobsFanOutIsBounded(t *testing.T) {
	tasks, fns := builtins()
	newRS := func(replicas int32) *v1beta1.RestoreSession {
		rs := restoreSession()
		rs.Spec.Target.Ref.Name = ""
		rs.Spec.Target.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{
			ObjectMeta: metav1.ObjectMeta{Name: "data-${POD_ORDINAL}"},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		}}
		rs.Spec.Target.Replicas = ptr.To(replicas)
		return rs
	}
	// The smallest first: without the bound, the larger would exhaust
	// this machine's memory too, so the test stops at the first admitted.
	for _, n := range []int32{v1beta1.MaxRestoreReplicas + 1, 20000, 2147483647} {
		rs := newRS(n)
		if errs := v1beta1.ValidateRestoreSession(rs); len(errs) == 0 {
			t.Errorf("ValidateRestoreSession admits replicas %d", n)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		jobs, pvcs, err := RestoreJobs(rs, s3Repo(), tasks[v1beta1.TaskPVCRestore], fns, nil, opts)
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), "spec.target.replicas") {
			t.Fatalf("replicas %d: %d Jobs, %d PVCs, %v; want refused", n, len(jobs), len(pvcs), err)
		}
		if mib := (after.TotalAlloc - before.TotalAlloc) >> 20; mib > 1 {
			t.Errorf("replicas %d: %d MiB allocated before refusing", n, mib)
		}
	}
	jobs, pvcs, err := RestoreJobs(newRS(v1beta1.MaxRestoreReplicas), s3Repo(), tasks[v1beta1.TaskPVCRestore], fns, nil, opts)
	if err != nil || len(jobs) != v1beta1.MaxRestoreReplicas || len(pvcs) != v1beta1.MaxRestoreReplicas {
		t.Fatalf("replicas %d: %d Jobs, %d PVCs, %v", v1beta1.MaxRestoreReplicas, len(jobs), len(pvcs), err)
	}

	// Each replica copies the spec: 100 replicas of a 1 MiB template
	// held some 130 MiB at once. The bound counts the spec's size...
	rs := newRS(20)
	rs.Spec.Target.VolumeClaimTemplates[0].Annotations = map[string]string{"note": strings.Repeat("x", 1<<20)}
	if _, _, err := RestoreJobs(rs, s3Repo(), tasks[v1beta1.TaskPVCRestore], fns, nil, opts); err == nil || !strings.Contains(err.Error(), "here at most 15 replicas") {
		t.Errorf("20 replicas of a 1 MiB spec: %v", err)
	}
	rs.Spec.Target.Replicas = ptr.To(int32(15))
	if jobs, _, err := RestoreJobs(rs, s3Repo(), tasks[v1beta1.TaskPVCRestore], fns, nil, opts); err != nil || len(jobs) != 15 {
		t.Errorf("15 replicas of a 1 MiB spec: %d Jobs, %v", len(jobs), err)
	}
	// ... and, where only the resolver sees them, the Task's and its
	// Functions'.
	big := map[string]*v1beta1.Function{}
	for name, fn := range fns {
		fn = fn.DeepCopy()
		fn.Spec.Args = append(fn.Spec.Args, "--note="+strings.Repeat("x", 1<<20))
		big[name] = fn
	}
	rs = newRS(20)
	if errs := v1beta1.ValidateRestoreSession(rs); len(errs) > 0 {
		t.Fatal(errs)
	}
	if _, _, err := RestoreJobs(rs, s3Repo(), tasks[v1beta1.TaskPVCRestore], big, nil, opts); err == nil || !strings.Contains(err.Error(), "too many for a spec, Task and Functions of") {
		t.Errorf("20 replicas of a 2 MiB Task: %v", err)
	}
}

// Steps and params are containers and variables of every Job: past the
// schema's bounds (a Task or session stored under an older schema) the
// resolver refuses them.
func TestBuildRefusesTooManyStepsOrParams(t *testing.T) {
	tasks, fns := builtins()
	task := tasks[v1beta1.TaskPVCBackup].DeepCopy()
	for len(task.Spec.Steps) <= v1beta1.MaxTaskSteps {
		task.Spec.Steps = append(task.Spec.Steps, task.Spec.Steps[0])
	}
	if _, err := BackupJob(backupConfig(), session(), s3Repo(), task, fns, opts); err == nil || !strings.Contains(err.Error(), "has 33 steps, at most 32") {
		t.Errorf("33 steps: %v", err)
	}
	bc := backupConfig()
	for i := 0; i <= v1beta1.MaxParams; i++ {
		bc.Spec.Task.Params = append(bc.Spec.Task.Params, v1beta1.Param{Name: fmt.Sprintf("P%d", i), Value: "v"})
	}
	if _, err := BackupJob(bc, session(), s3Repo(), tasks[v1beta1.TaskPVCBackup], fns, opts); err == nil || !strings.Contains(err.Error(), "65 task params, at most 64") {
		t.Errorf("65 params: %v", err)
	}
}

// TestRestoreJobsResolvedSnapshots: the snapshots the operator found in the
// target's records reach the runner only when no rule chooses what to restore.
func TestRestoreJobsResolvedSnapshots(t *testing.T) {
	tasks, fns := builtins()
	resolved := []jobenv.ResolvedSnapshot{{ID: strings.Repeat("a", 64), Paths: []string{"/stow-data"}, MountPath: "/stow-data"}}
	envOf := func(rs *v1beta1.RestoreSession) string {
		t.Helper()
		jobs, _, err := RestoreJobs(rs, s3Repo(), tasks[v1beta1.TaskPVCRestore], fns, resolved, opts)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("RestoreJobs = %d jobs, %v", len(jobs), err)
		}
		for _, c := range allContainers(jobs[0]) {
			for _, e := range c.Env {
				if e.Name == jobenv.Resolved {
					return e.Value
				}
			}
		}
		return ""
	}
	rs := restoreSession()
	rs.Spec.Target.Rules = nil
	if v := envOf(rs); !strings.Contains(v, resolved[0].ID) || !strings.Contains(v, `"paths":["/stow-data"]`) {
		t.Errorf("no rules: %s = %q, want the resolved snapshot", jobenv.Resolved, v)
	}
	rs.Spec.Target.Rules = []v1beta1.Rule{{Include: []string{"/db"}}}
	if v := envOf(rs); v == "" {
		t.Errorf("a rule that only filters files: resolved snapshots dropped")
	}
	rs.Spec.Target.Rules = []v1beta1.Rule{{Paths: []string{"/stow-data"}}}
	if v := envOf(rs); v != "" {
		t.Errorf("a rule naming paths: %s = %q, want none (the rule decides)", jobenv.Resolved, v)
	}
}

// Stash's clone-pvc guide (StatefulSet part): each new PVC is mounted at the
// mountPath of the volumeMount named like its template without the ordinal,
// the runner learns the further mounts from the contract, and every PVC
// carries the RestoreSession's UID.
func TestRestoreIntoNewPVCsLikeStashCloneGuide(t *testing.T) {
	tasks, fns := builtins()
	three := int32(3)
	rs := restoreSession()
	rs.Spec.Target = &v1beta1.RestoreTarget{
		Replicas: &three,
		VolumeMounts: []corev1.VolumeMount{
			{Name: "restore-data-restore-demo", MountPath: "/source/data"},
			{Name: "restore-config-restore-demo", MountPath: "/source/config"},
		},
		VolumeClaimTemplates: []corev1.PersistentVolumeClaim{
			{ObjectMeta: metav1.ObjectMeta{Name: "restore-data-restore-demo-${POD_ORDINAL}"}},
			{ObjectMeta: metav1.ObjectMeta{Name: "restore-config-restore-demo-${POD_ORDINAL}"}},
		},
		Rules: []v1beta1.Rule{{Paths: []string{"/source/data", "/source/config"}}},
	}
	jobs, pvcs, err := RestoreJobs(rs, s3Repo(), tasks[v1beta1.TaskPVCRestore], fns, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 3 || len(pvcs) != 6 {
		t.Fatalf("%d jobs, %d pvcs; want 3 and 6", len(jobs), len(pvcs))
	}
	for _, p := range pvcs {
		if p.Annotations[v1beta1.AnnotationRestoredBy] != string(rs.UID) {
			t.Errorf("PVC %s annotations %v", p.Name, p.Annotations)
		}
	}
	pod := jobs[1].Spec.Template.Spec
	claimAt := map[string]string{}
	for _, c := range allContainers(jobs[1]) {
		for _, m := range c.VolumeMounts {
			for _, v := range pod.Volumes {
				if v.Name == m.Name && v.PersistentVolumeClaim != nil {
					claimAt[v.PersistentVolumeClaim.ClaimName] = m.MountPath
				}
			}
		}
		if c.Name == "update-status-1" {
			continue
		}
		found := false
		for _, e := range c.Env {
			if e.Name == jobenv.ExtraMounts {
				found = e.Value == "/source/config"
			}
		}
		if !found {
			t.Errorf("container %s: %s is not /source/config: %v", c.Name, jobenv.ExtraMounts, c.Env)
		}
	}
	want := map[string]string{"restore-data-restore-demo-1": "/source/data", "restore-config-restore-demo-1": "/source/config"}
	if fmt.Sprint(claimAt) != fmt.Sprint(want) {
		t.Errorf("ordinal 1 mounts %v, want %v", claimAt, want)
	}

	// Two templates at one path: refused, not mounted over each other.
	rs.Spec.Target.VolumeMounts[1].MountPath = "/source/data"
	if _, _, err := RestoreJobs(rs, s3Repo(), tasks[v1beta1.TaskPVCRestore], fns, nil, opts); err == nil || !strings.Contains(err.Error(), "both mounted at /source/data") {
		t.Errorf("two templates at one mount path: %v", err)
	}
}

// TestRetentionInTheBackupStep: a Repository whose only user is the
// configuration gets a one-container Job (backup-pvc applies retention);
// a shared one keeps update-status as its own container, so that the gate
// holds the repository alone only from the forget on.
func TestRetentionInTheBackupStep(t *testing.T) {
	mine := v1beta1.InvokerReference{Kind: v1beta1.KindBackupConfiguration, Namespace: "demo", Name: "nfs-backup"}
	cases := []struct {
		name   string
		refs   []v1beta1.InvokerReference
		params []v1beta1.Param
		fused  bool
	}{
		{"sole user", []v1beta1.InvokerReference{mine}, nil, true},
		{"references not computed yet", nil, nil, false},
		{"shared with another configuration", []v1beta1.InvokerReference{mine, {Kind: v1beta1.KindBackupConfiguration, Namespace: "demo", Name: "other"}}, nil, false},
		{"used by another configuration only", []v1beta1.InvokerReference{{Kind: v1beta1.KindBackupConfiguration, Namespace: "other", Name: "nfs-backup"}}, nil, false},
		{"the check runs too", []v1beta1.InvokerReference{mine}, []v1beta1.Param{{Name: VarIntegrityCheck, Value: "true"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bc := backupConfig()
			bc.Spec.Task.Params = tc.params
			repo := s3Repo()
			repo.Status.References = tc.refs
			job := mustBackupJob(t, bc, repo)
			p := job.Spec.Template.Spec
			got := containerNames(allContainers(job))
			if !tc.fused {
				if strings.Join(got, ",") != "pvc-backup-0,update-status-1" || job.Annotations[v1beta1.AnnotationExclusiveFrom] != "update-status-1" {
					t.Fatalf("containers %v, exclusive from %q; want the two steps, exclusive from update-status-1", got, job.Annotations[v1beta1.AnnotationExclusiveFrom])
				}
				if slices.Contains(p.InitContainers[0].Args, "--apply-retention=true") {
					t.Error("the backup step applies retention although update-status runs")
				}
				return
			}
			if strings.Join(got, ",") != "pvc-backup-0" || len(p.InitContainers) != 0 {
				t.Fatalf("containers %v (init %d); want pvc-backup-0 alone", got, len(p.InitContainers))
			}
			c := p.Containers[0]
			if arg(t, c, "--apply-retention") != "true" || arg(t, c, "--retention-keep-last") != "5" || arg(t, c, "--retention-prune") != "true" || arg(t, c, "--backup-paths") != "/stow-data" {
				t.Errorf("args = %q", c.Args)
			}
			if slices.ContainsFunc(c.Args, func(a string) bool {
				return strings.HasPrefix(a, "--integrity-check") || strings.HasPrefix(a, "--metrics")
			}) {
				t.Errorf("update-status's other flags reached backup-pvc: %q", c.Args)
			}
			if job.Annotations[v1beta1.AnnotationExclusiveFrom] != "pvc-backup-0" {
				t.Errorf("exclusive from %q; want the one container", job.Annotations[v1beta1.AnnotationExclusiveFrom])
			}
			if c.SecurityContext == nil || ptr.Deref(c.SecurityContext.AllowPrivilegeEscalation, true) || c.SecurityContext.Capabilities == nil {
				t.Errorf("the one container is not hardened: %+v", c.SecurityContext)
			}
		})
	}
}

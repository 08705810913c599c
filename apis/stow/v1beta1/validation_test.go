package v1beta1

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func validBC() *BackupConfiguration {
	return &BackupConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "data-backup", Namespace: "demo"},
		Spec: BackupConfigurationSpec{
			Schedule:        "*/5 * * * *",
			Repository:      ObjectRef{Name: "repo"},
			Target:          &BackupTarget{Ref: TargetRef{APIVersion: "v1", Kind: KindPersistentVolumeClaim, Name: "data"}},
			RetentionPolicy: RetentionPolicy{Name: "keep-5", KeepLast: 5, Prune: true},
		},
	}
}

func TestValidateBackupConfiguration(t *testing.T) {
	str := func(s string) *string { return &s }
	cases := []struct {
		name    string
		mutate  func(*BackupConfiguration)
		wantErr string // substring of the aggregated error; "" means valid
	}{
		{"valid", func(*BackupConfiguration) {}, ""},
		{"random daily schedule", func(b *BackupConfiguration) { b.Spec.Schedule = "@daily-random" }, ""},
		{"macro schedule", func(b *BackupConfiguration) { b.Spec.Schedule = "@hourly" }, ""},
		{"bad cron", func(b *BackupConfiguration) { b.Spec.Schedule = "61 * * * *" }, "spec.schedule"},
		{"six-field cron", func(b *BackupConfiguration) { b.Spec.Schedule = "0 0 * * * *" }, "spec.schedule"},
		{"empty schedule", func(b *BackupConfiguration) { b.Spec.Schedule = " " }, "spec.schedule: Required"},
		{"TZ in schedule", func(b *BackupConfiguration) { b.Spec.Schedule = "TZ=UTC 0 * * * *" }, "spec.timeZone"},
		// Schedules that parse but name no existing date: cron's Next
		// is the zero time, the CronJob never runs, the configuration
		// was Ready and never backed up.
		{"February 31st", func(b *BackupConfiguration) { b.Spec.Schedule = "0 0 31 2 *" }, "spec.schedule: Invalid value: \"0 0 31 2 *\": schedule \"0 0 31 2 *\" never fires"},
		{"February 30th", func(b *BackupConfiguration) { b.Spec.Schedule = "0 0 30 2 *" }, "never fires"},
		{"31st of 30-day months", func(b *BackupConfiguration) { b.Spec.Schedule = "0 0 31 4,6,9,11 *" }, "never fires"},
		{"February 29th fires in leap years", func(b *BackupConfiguration) { b.Spec.Schedule = "0 0 29 2 *" }, ""},
		{"31st or a Monday of February", func(b *BackupConfiguration) { b.Spec.Schedule = "0 0 31 2 MON" }, ""},
		{"valid time zone", func(b *BackupConfiguration) { b.Spec.TimeZone = str("Europe/Berlin") }, ""},
		{"unknown time zone", func(b *BackupConfiguration) { b.Spec.TimeZone = str("Mars/Olympus") }, "spec.timeZone"},
		{"missing target", func(b *BackupConfiguration) { b.Spec.Target = nil }, "spec.target: Required"},
		{"missing pvc name", func(b *BackupConfiguration) { b.Spec.Target.Ref.Name = "" }, "spec.target.ref.name"},
		{"path in the target", func(b *BackupConfiguration) { b.Spec.Target.Paths = []string{"/stow-data/app"} }, ""},
		{"comma-joined paths", func(b *BackupConfiguration) { b.Spec.Target.Paths = []string{"/stow-data,/proc/self"} }, "must not contain a comma"},
		{"path outside the target", func(b *BackupConfiguration) { b.Spec.Target.Paths = []string{"/proc/self"} }, "must be inside the target volume, mounted at /stow-data"},
		{"scratch dir", func(b *BackupConfiguration) { b.Spec.Target.Paths = []string{"/stow-tmp"} }, "must be inside the target volume"},
		{"cross-namespace pvc", func(b *BackupConfiguration) { b.Spec.Target.Ref.Namespace = "other" }, "spec.target.ref.namespace: Forbidden"},
		{"same-namespace pvc written out", func(b *BackupConfiguration) { b.Spec.Target.Ref.Namespace = "demo" }, ""},
		{"wrong kind", func(b *BackupConfiguration) { b.Spec.Target.Ref.Kind = "Deployment" }, "spec.target.ref.kind"},
		{"missing repository", func(b *BackupConfiguration) { b.Spec.Repository.Name = "" }, "spec.repository.name"},
		{"relative path", func(b *BackupConfiguration) { b.Spec.Target.Paths = []string{"data"} }, "spec.target.paths[0]"},
		{"path with ..", func(b *BackupConfiguration) { b.Spec.Target.Paths = []string{"/stow-data/../etc"} }, "spec.target.paths[0]"},
		{"exclude with comma", func(b *BackupConfiguration) { b.Spec.Target.Exclude = []string{"*.tmp,*.log"} }, "spec.target.exclude[0]"},
		{"mount path under tmp", func(b *BackupConfiguration) {
			b.Spec.Target.VolumeMounts = []corev1.VolumeMount{{Name: "x", MountPath: "/stow-tmp/data"}}
		}, "spec.target.volumeMounts[0].mountPath: Invalid value: \"/stow-tmp/data\": must not be /stow-tmp or under it: Stow mounts its scratch volume"},
		// The interim volume is mounted there in every container: with an
		// interimVolumeTemplate the target was replaced by it, and the
		// backup of the empty interim volume succeeded.
		{"mount path at the interim volume", func(b *BackupConfiguration) {
			b.Spec.Target.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/stow-interim-volume"}}
		}, "spec.target.volumeMounts[0].mountPath: Invalid value: \"/stow-interim-volume\": must not be /stow-interim-volume or under it: Stow mounts the interim volume of interimVolumeTemplate there"},
		{"mount path under the interim volume", func(b *BackupConfiguration) {
			b.Spec.Target.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/stow-interim-volume/data"}}
		}, "spec.target.volumeMounts[0].mountPath"},
		{"interim volume path spelled otherwise", func(b *BackupConfiguration) {
			b.Spec.Target.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "//stow-interim-volume/./"}}
		}, "spec.target.volumeMounts[0].mountPath"},
		{"mount path next to the interim volume", func(b *BackupConfiguration) {
			b.Spec.Target.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/stow-interim-volume-2"}}
		}, ""},
		{"mount path at /", func(b *BackupConfiguration) {
			b.Spec.Target.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/"}}
		}, "spec.target.volumeMounts[0].mountPath"},
		{"missing retention name", func(b *BackupConfiguration) { b.Spec.RetentionPolicy.Name = "" }, "spec.retentionPolicy.name"},
		{"negative history", func(b *BackupConfiguration) { v := int32(-1); b.Spec.BackupHistoryLimit = &v }, "backupHistoryLimit"},
		{"zero timeout", func(b *BackupConfiguration) { b.Spec.TimeOut = &Duration{} }, "spec.timeOut"},
		{"unknown driver", func(b *BackupConfiguration) { b.Spec.Driver = "VolumeSnapshotter" }, "spec.driver"},
		{"64 params", func(b *BackupConfiguration) { b.Spec.Task.Params = params(64) }, ""},
		{"65 params", func(b *BackupConfiguration) { b.Spec.Task.Params = params(65) }, "spec.task.params: Too many: 65: must have at most 64 items"},
		{"17 volume mounts", func(b *BackupConfiguration) { b.Spec.Target.VolumeMounts = volumeMounts(17) }, "spec.target.volumeMounts: Too many: 17: must have at most 16 items"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bc := validBC()
			tc.mutate(bc)
			err := ValidateBackupConfiguration(bc).ToAggregate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("want error containing %q, got valid", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("want error containing %q, got %v", tc.wantErr, err)
			}
		})
	}
}

func TestValidateRepository(t *testing.T) {
	cases := []struct {
		name    string
		spec    RepositorySpec
		wantErr string
	}{
		{"s3", RepositorySpec{Backend: Backend{StorageSecretName: "s", S3: &S3Spec{Endpoint: "http://127.0.0.1:9000", Bucket: "b"}}}, ""},
		{"local", RepositorySpec{Backend: Backend{StorageSecretName: "s", Local: &LocalSpec{MountPath: "/repo",
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "repo"}}}}}, ""},
		{"local nfs", RepositorySpec{Backend: Backend{StorageSecretName: "s", Local: &LocalSpec{MountPath: "/repo",
			VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs", Path: "/"}}}}}, ""},
		// Stash's local backend guide (backends/local/examples/emptyDir.yaml).
		{"local emptyDir", RepositorySpec{Backend: Backend{StorageSecretName: "s", Local: &LocalSpec{MountPath: "/safe/data",
			VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}}, "spec.backend.local.emptyDir: Forbidden: the volume lives only as long as one Job's pod"},
		{"local projected", RepositorySpec{Backend: Backend{StorageSecretName: "s", Local: &LocalSpec{MountPath: "/repo",
			VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{}}}}}, "spec.backend.local.projected"},
		{"local without a volume source", RepositorySpec{Backend: Backend{StorageSecretName: "s", Local: &LocalSpec{MountPath: "/repo"}}}, "spec.backend.local: Required value: a volume source"},
		{"no backend", RepositorySpec{Backend: Backend{StorageSecretName: "s"}}, "spec.backend: Required"},
		{"two backends", RepositorySpec{Backend: Backend{StorageSecretName: "s", GCS: &GCSSpec{Bucket: "b"}, B2: &B2Spec{Bucket: "b"}}}, "b2,gcs"},
		{"missing secret name", RepositorySpec{Backend: Backend{Rest: &RestServerSpec{URL: "http://x"}}}, "storageSecretName"},
		{"s3 missing bucket", RepositorySpec{Backend: Backend{StorageSecretName: "s", S3: &S3Spec{Endpoint: "e"}}}, "spec.backend.s3.bucket"},
		{"local relative", RepositorySpec{Backend: Backend{StorageSecretName: "s", Local: &LocalSpec{MountPath: "repo"}}}, "absolute"},
		{"local under /stow", RepositorySpec{Backend: Backend{StorageSecretName: "s", Local: &LocalSpec{MountPath: "/stow/repo"}}}, "mountPath"},
		{"local at the scratch volume", RepositorySpec{Backend: Backend{StorageSecretName: "s", Local: &LocalSpec{MountPath: "/stow-tmp"}}}, "spec.backend.local.mountPath: Invalid value: \"/stow-tmp\": must not be /stow-tmp or under it"},
		{"local under the interim volume", RepositorySpec{Backend: Backend{StorageSecretName: "s", Local: &LocalSpec{MountPath: "/stow-interim-volume/repo"}}}, "spec.backend.local.mountPath: Invalid value: \"/stow-interim-volume/repo\": must not be /stow-interim-volume or under it"},
		{"local subPath escape", RepositorySpec{Backend: Backend{StorageSecretName: "s", Local: &LocalSpec{MountPath: "/repo", SubPath: "../x"}}}, "subPath"},
		{"wipeOut local", RepositorySpec{WipeOut: true, Backend: Backend{StorageSecretName: "s", Local: &LocalSpec{MountPath: "/repo"}}}, "spec.wipeOut"},
		{"selector without selector", RepositorySpec{
			Backend:     Backend{StorageSecretName: "s", Azure: &AzureSpec{Container: "c"}},
			UsagePolicy: &UsagePolicy{AllowedNamespaces: AllowedNamespaces{From: NamespacesFromSelector}},
		}, "selector"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateRepository(&Repository{Spec: tc.spec}).ToAggregate()
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("want %q, got %v", tc.wantErr, err)
			}
		})
	}
}

func TestValidateRestoreSession(t *testing.T) {
	base := func() *RestoreSession {
		return &RestoreSession{
			ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "demo"},
			Spec: RestoreSessionSpec{
				Repository: ObjectRef{Name: "repo"},
				Target:     &RestoreTarget{Ref: TargetRef{Name: "data"}},
			},
		}
	}
	cases := []struct {
		name    string
		rules   []Rule
		mutate  func(*RestoreSession)
		wantErr string
	}{
		{"no rules", nil, nil, ""},
		{"latest", []Rule{{Snapshots: []string{"latest"}}}, nil, ""},
		{"snapshot id", []Rule{{Snapshots: []string{"4bba301e"}}}, nil, ""},
		{"bad snapshot id", []Rule{{Snapshots: []string{"../x"}}}, nil, "snapshots[0]"},
		{"snapshots and paths", []Rule{{Snapshots: []string{"latest"}, Paths: []string{"/stow-data"}}}, nil, "not both"},
		{"path with ..", []Rule{{Paths: []string{"/stow-data/../../etc"}}}, nil, "paths[0]"},
		{"include with ..", []Rule{{Include: []string{"../etc/passwd"}}}, nil, "include[0]"},
		{"two catch-all rules", []Rule{{}, {}}, nil, "at most one rule"},
		{"host in two rules", []Rule{{TargetHosts: []string{"a"}}, {TargetHosts: []string{"a"}}}, nil, "Duplicate"},
		{"cross-namespace target", nil, func(r *RestoreSession) { r.Spec.Target.Ref.Namespace = "x" }, "Forbidden"},
		{"no target name nor templates", nil, func(r *RestoreSession) { r.Spec.Target.Ref.Name = "" }, "spec.target.ref.name"},
		{"templates instead of name", nil, func(r *RestoreSession) {
			r.Spec.Target.Ref.Name = ""
			r.Spec.Target.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "restored-${POD_ORDINAL}"}}}
		}, ""},
		// Both: the Job restored into ref's PVC, the template's new PVC
		// was made and mounted nowhere, and the restore succeeded.
		{"name and templates", nil, func(r *RestoreSession) {
			r.Spec.Target.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "fresh"}}}
		}, "spec.target.volumeClaimTemplates: Forbidden: must not be set together with spec.target.ref.name"},
		{"missing target", nil, func(r *RestoreSession) { r.Spec.Target = nil }, "spec.target: Required"},
		// Every replica's Job and PVCs are built on each sync: replicas
		// 2147483647 (the schema had only a minimum) crashed the operator.
		{"100 replicas", nil, func(r *RestoreSession) { templates(r, 2, 100) }, ""},
		{"101 replicas", nil, func(r *RestoreSession) { templates(r, 2, 101) }, "spec.target.replicas: Invalid value: 101: must be between 1 and 100"},
		{"2147483647 replicas", nil, func(r *RestoreSession) { templates(r, 1, 2147483647) }, "spec.target.replicas: Invalid value: 2147483647"},
		{"101 replicas without templates", nil, func(r *RestoreSession) { v := int32(101); r.Spec.Target.Replicas = &v }, "spec.target.replicas"},
		{"8 templates", nil, func(r *RestoreSession) { templates(r, 8, 3) }, ""},
		{"9 templates", nil, func(r *RestoreSession) { templates(r, 9, 1) }, "spec.target.volumeClaimTemplates: Too many: 9: must have at most 8 items"},
		{"a large spec times 100 replicas", nil, func(r *RestoreSession) {
			templates(r, 1, 100)
			r.Spec.Target.VolumeClaimTemplates[0].Annotations = map[string]string{"note": strings.Repeat("x", 256<<10)}
		}, "spec.target.replicas: Invalid value: 100: too many for a spec of 257 KiB"},
		{"a large spec times few replicas", nil, func(r *RestoreSession) {
			templates(r, 1, 60)
			r.Spec.Target.VolumeClaimTemplates[0].Annotations = map[string]string{"note": strings.Repeat("x", 256<<10)}
		}, ""},
		{"65 params", nil, func(r *RestoreSession) { r.Spec.Task.Params = params(65) }, "spec.task.params: Too many"},
		{"17 volume mounts", nil, func(r *RestoreSession) { r.Spec.Target.VolumeMounts = volumeMounts(17) }, "spec.target.volumeMounts: Too many"},
		{"target at the interim volume", nil, func(r *RestoreSession) {
			r.Spec.Target.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/stow-interim-volume"}}
		}, "spec.target.volumeMounts[0].mountPath: Invalid value: \"/stow-interim-volume\""},
		// Every entry names where a template's PVC is mounted.
		{"template mounted under the scratch volume", nil, func(r *RestoreSession) {
			r.Spec.Target.Ref.Name = ""
			r.Spec.Target.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}, {ObjectMeta: metav1.ObjectMeta{Name: "config"}}}
			r.Spec.Target.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "config", MountPath: "/stow-tmp/config"}}
		}, "spec.target.volumeMounts[1].mountPath: Invalid value: \"/stow-tmp/config\""},
		{"restoreAsOf with latest", []Rule{{Snapshots: []string{"latest"}}}, func(r *RestoreSession) { r.Spec.RestoreAsOf = &metav1.Time{} }, ""},
		{"restoreAsOf with a snapshot id", []Rule{{Snapshots: []string{"4bba301e"}}}, func(r *RestoreSession) { r.Spec.RestoreAsOf = &metav1.Time{} }, "spec.restoreAsOf chooses the snapshot"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs := base()
			rs.Spec.Target = &RestoreTarget{Ref: TargetRef{Name: "data"}, Rules: tc.rules}
			if tc.mutate != nil {
				tc.mutate(rs)
			}
			err := ValidateRestoreSession(rs).ToAggregate()
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("want %q, got %v", tc.wantErr, err)
			}
		})
	}
}

func params(n int) []Param {
	var out []Param
	for i := 0; i < n; i++ {
		out = append(out, Param{Name: fmt.Sprintf("P%d", i), Value: "v"})
	}
	return out
}

func volumeMounts(n int) []corev1.VolumeMount {
	var out []corev1.VolumeMount
	for i := 0; i < n; i++ {
		out = append(out, corev1.VolumeMount{Name: fmt.Sprintf("m%d", i), MountPath: fmt.Sprintf("/m%d", i)})
	}
	return out
}

// templates makes r restore into n new PVCs per replica, replicas times.
func templates(r *RestoreSession, n int, replicas int32) {
	r.Spec.Target.Ref.Name = ""
	r.Spec.Target.Replicas = &replicas
	r.Spec.Target.VolumeClaimTemplates = nil
	for i := 0; i < n; i++ {
		r.Spec.Target.VolumeClaimTemplates = append(r.Spec.Target.VolumeClaimTemplates,
			corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("v%d-${POD_ORDINAL}", i)}})
	}
}

func TestDeprecatedRulesMoveIntoTarget(t *testing.T) {
	rs := &RestoreSession{Spec: RestoreSessionSpec{Target: &RestoreTarget{}, Rules: []Rule{{Snapshots: []string{"latest"}}}}}
	DefaultRestoreSession(rs)
	if len(rs.Spec.Target.Rules) != 1 || rs.Spec.Target.Rules[0].Snapshots[0] != "latest" {
		t.Fatalf("rules not moved: %+v", rs.Spec.Target.Rules)
	}
	if rs.Spec.Task.Name != TaskPVCRestore || rs.Spec.Target.Ref.Kind != KindPersistentVolumeClaim {
		t.Fatalf("defaults not applied: %+v", rs.Spec)
	}
}

func TestDefaultPathsFollowMountPath(t *testing.T) {
	bc := validBC()
	bc.Spec.Target.VolumeMounts = []corev1.VolumeMount{{Name: "v", MountPath: "/data/"}}
	DefaultBackupConfiguration(bc)
	if got := bc.Spec.Target.Paths; len(got) != 1 || got[0] != "/data" {
		t.Fatalf("paths = %v, want [/data]", got)
	}
	if bc.HistoryLimit() != 1 || bc.Spec.Task.Name != TaskPVCBackup || bc.Spec.Repository.Namespace != "demo" {
		t.Fatalf("defaults not applied: %+v", bc.Spec)
	}
}

func TestValidateUsage(t *testing.T) {
	repo := func(up *UsagePolicy) *Repository {
		return &Repository{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "backup"}, Spec: RepositorySpec{UsagePolicy: up}}
	}
	sel := &UsagePolicy{AllowedNamespaces: AllowedNamespaces{From: NamespacesFromSelector,
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"backup": "yes"}}}}
	cases := []struct {
		name   string
		r      *Repository
		ns     string
		labels map[string]string
		ok     bool
	}{
		{"same namespace, no policy", repo(nil), "backup", nil, true},
		{"other namespace, no policy", repo(nil), "app", nil, false},
		{"all", repo(&UsagePolicy{AllowedNamespaces: AllowedNamespaces{From: NamespacesFromAll}}), "app", nil, true},
		{"selector match", repo(sel), "app", map[string]string{"backup": "yes"}, true},
		{"selector miss", repo(sel), "app", map[string]string{"backup": "no"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := ValidateUsage(tc.r, tc.ns, tc.labels); (err == nil) != tc.ok {
				t.Fatalf("ok=%v, err=%v", tc.ok, err)
			}
		})
	}
}

func TestValidateMountsApart(t *testing.T) {
	repo := &Repository{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "demo"},
		Spec: RepositorySpec{Backend: Backend{Local: &LocalSpec{MountPath: "/repo"}}}}
	for mount, bad := range map[string]bool{"/repo": true, "/repo/x": true, "/": true, "/repository": false, "/stow-data": false} {
		errs := ValidateMountsApart(mount, repo, nil)
		if got := len(errs) > 0; got != bad {
			t.Errorf("target at %s: errs %v, want refused %v", mount, errs, bad)
		}
	}
	repo.Spec.Backend.Local.MountPath = "/stow-data/repo"
	if errs := ValidateMountsApart("/stow-data", repo, nil); len(errs) == 0 || !strings.Contains(errs[0].Error(), "overlaps the mountPath /stow-data/repo of the local Repository demo/r") {
		t.Errorf("repository inside the target: %v", errs)
	}
	if errs := ValidateMountsApart("/stow-data", &Repository{}, nil); len(errs) > 0 {
		t.Errorf("non-local repository: %v", errs)
	}
}

// A network hook that could never run (no host, a named port, an unknown
// scheme, body and form) makes the object Invalid at once, in the words
// the hook Job would fail with in every session; values left to rendering
// are judged when the hook runs. The named-port fragments are Stash's
// (guides/hooks/configuring-hooks).
func TestValidateNetworkHooks(t *testing.T) {
	get := func(host string, port intstr.IntOrString) *Handler {
		return &Handler{HTTPGet: &HTTPGetAction{Host: host, Port: port, Path: "/"}}
	}
	for _, tc := range []struct {
		name    string
		hook    *Handler
		wantErr string
	}{
		{"httpGet with host and port", get("app.demo.svc", intstr.FromInt32(8080)), ""},
		{"numeric port as a string", get("app", intstr.FromString("8080")), ""},
		{"port left to rendering", get("app", intstr.FromString("${PORT}")), ""},
		{"host left to rendering", get("${SERVICE}", intstr.FromString("http")), ""},
		{"named port", get("app", intstr.FromString("my-port")), `spec.hooks.preBackup.httpGet: Invalid value: "": httpGet.port "my-port": a hook needs a port number`},
		{"no host", &Handler{HTTPGet: &HTTPGetAction{Port: intstr.FromInt32(80)}, ContainerName: "my-container"}, "httpGet.host is required"},
		{"tcpSocket named port", &Handler{TCPSocket: &corev1.TCPSocketAction{Host: "db", Port: intstr.FromString("my-port")}}, "spec.hooks.preBackup.tcpSocket"},
		{"scheme", &Handler{HTTPGet: &HTTPGetAction{Host: "a", Port: intstr.FromInt32(80), Scheme: "FTP"}}, `spec.hooks.preBackup.httpGet.scheme: Invalid value: "FTP"`},
		{"body and form", &Handler{HTTPPost: &HTTPPostAction{HTTPGetAction: HTTPGetAction{Host: "a", Port: intstr.FromInt32(80)}, Body: "x",
			Form: []FormEntry{{Key: "k", Values: []string{"v"}}}}}, "set body or form, not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bc := validBC()
			bc.Spec.Hooks = &BackupHooks{PreBackup: tc.hook}
			err := ValidateBackupConfiguration(bc).ToAggregate()
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("want %q, got %v", tc.wantErr, err)
			}
		})
	}
	rs := &RestoreSession{Spec: RestoreSessionSpec{Repository: ObjectRef{Name: "r"}, Target: &RestoreTarget{Ref: TargetRef{Name: "data"}},
		Hooks: &RestoreHooks{PostRestore: &PostHookHandler{Handler: *get("", intstr.FromInt32(80))}}}}
	if err := ValidateRestoreSession(rs).ToAggregate(); err == nil || !strings.Contains(err.Error(), "spec.hooks.postRestore.httpGet: Invalid value: \"\": httpGet.host is required") {
		t.Errorf("restore post hook without host: %v", err)
	}
}

package podpolicy

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/stowhq/stow/apis/stow/v1beta1"
	"github.com/stowhq/stow/pkg/builtin"
)

func fields(asks []Ask) []string {
	var out []string
	for _, a := range asks {
		out = append(out, a.Field())
	}
	return out
}

func TestPlainObjectsAskNothing(t *testing.T) {
	bc := &v1beta1.BackupConfiguration{Spec: v1beta1.BackupConfigurationSpec{
		Schedule: "@daily",
		Target:   &v1beta1.BackupTarget{Ref: v1beta1.TargetRef{Name: "data"}},
		RuntimeSettings: v1beta1.RuntimeSettings{
			Pod: &v1beta1.PodRuntimeSettings{NodeSelector: map[string]string{"a": "b"},
				SecurityContext:              &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)},
				AutomountServiceAccountToken: ptr.To(false)},
			Container: &v1beta1.ContainerRuntimeSettings{SecurityContext: &corev1.SecurityContext{
				Privileged: ptr.To(false), AllowPrivilegeEscalation: ptr.To(false),
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			}},
		},
		Hooks: &v1beta1.BackupHooks{PreBackup: &v1beta1.Handler{HTTPGet: &v1beta1.HTTPGetAction{Path: "/"}}},
	}}
	asks, err := Asks(BackupConfigurations, bc)
	if err != nil || len(asks) != 0 {
		t.Fatalf("plain BackupConfiguration asks %v (%v)", fields(asks), err)
	}
	repo := &v1beta1.Repository{Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{Local: &v1beta1.LocalSpec{
		MountPath: "/repo", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "r"}}}}}}
	if asks, _ := Asks(Repositories, repo); len(asks) != 0 {
		t.Fatalf("PVC repository asks %v", fields(asks))
	}
}

func TestEscalationsAreNamed(t *testing.T) {
	bc := &v1beta1.BackupConfiguration{Spec: v1beta1.BackupConfigurationSpec{
		RuntimeSettings: v1beta1.RuntimeSettings{
			Pod: &v1beta1.PodRuntimeSettings{
				SecurityContext:    &corev1.PodSecurityContext{RunAsUser: ptr.To(int64(0)), RunAsNonRoot: ptr.To(false)},
				ServiceAccountName: "admin", NodeName: "n1",
				Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			},
			Container: &v1beta1.ContainerRuntimeSettings{SecurityContext: &corev1.SecurityContext{
				Privileged:   ptr.To(true),
				Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN"}},
			}},
		},
		Hooks: &v1beta1.BackupHooks{PostBackup: &v1beta1.PostHookHandler{Handler: v1beta1.Handler{Exec: &corev1.ExecAction{Command: []string{"sh"}}}}},
	}}
	asks, err := Asks(BackupConfigurations, bc)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"spec.runtimeSettings.pod.securityContext.runAsUser",
		"spec.runtimeSettings.pod.securityContext.runAsNonRoot",
		"spec.runtimeSettings.container.securityContext.privileged",
		"spec.runtimeSettings.container.securityContext.capabilities.add",
		"spec.runtimeSettings.pod.serviceAccountName",
		"spec.runtimeSettings.pod.nodeName",
		"spec.runtimeSettings.pod.tolerations",
		"spec.hooks.postBackup.exec",
	}
	if got := strings.Join(fields(asks), "\n"); got != strings.Join(want, "\n") {
		t.Fatalf("asks:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if got := ClassesOf(asks); len(got) != 5 {
		t.Errorf("classes %v", got)
	}
	// The documented Stash recipe for unreadable files is an identity ask.
	rs := &v1beta1.RestoreSession{Spec: v1beta1.RestoreSessionSpec{RuntimeSettings: v1beta1.RuntimeSettings{
		Container: &v1beta1.ContainerRuntimeSettings{SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To(int64(0))}}}}}
	asks, _ = Asks(RestoreSessions, rs)
	if len(asks) != 1 || asks[0].Class != Identity || asks[0].Field() != "spec.runtimeSettings.container.securityContext.runAsUser" {
		t.Fatalf("restore runAsUser 0: %v", fields(asks))
	}
}

func TestNodeVolumesAndFunctions(t *testing.T) {
	repo := &v1beta1.Repository{Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{Local: &v1beta1.LocalSpec{
		MountPath: "/repo", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib"}}}}}}
	if asks, _ := Asks(Repositories, repo); len(asks) != 1 || asks[0].Class != HostVolume {
		t.Fatalf("hostPath repository: %v", fields(asks))
	}
	task := &v1beta1.Task{Spec: v1beta1.TaskSpec{Volumes: []corev1.Volume{
		{Name: "a", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "b", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/etc"}}},
	}}}
	if asks, _ := Asks(Tasks, task); len(asks) != 1 || asks[0].Field() != "spec.volumes[*].hostPath" {
		t.Fatalf("hostPath task: %v", fields(asks))
	}
	fn := &v1beta1.Function{Spec: v1beta1.FunctionSpec{Image: "x", Ports: []corev1.ContainerPort{{ContainerPort: 80}, {ContainerPort: 81, HostPort: 81}},
		RuntimeSettings: &v1beta1.ContainerRuntimeSettings{SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(true)}}}}
	asks, _ := Asks(Functions, fn)
	if got := strings.Join(fields(asks), ","); got != "spec.runtimeSettings.securityContext.allowPrivilegeEscalation,spec.ports[*].hostPort" {
		t.Fatalf("function: %s", got)
	}
}

// The CEL is generated from the same path and test as the Go check.
func TestCEL(t *testing.T) {
	cases := map[string]string{
		"spec.runtimeSettings.pod.securityContext.runAsUser":              "has(object.spec) && has(object.spec.runtimeSettings) && has(object.spec.runtimeSettings.pod) && has(object.spec.runtimeSettings.pod.securityContext) && has(object.spec.runtimeSettings.pod.securityContext.runAsUser)",
		"spec.runtimeSettings.pod.securityContext.runAsNonRoot":           "has(object.spec) && has(object.spec.runtimeSettings) && has(object.spec.runtimeSettings.pod) && has(object.spec.runtimeSettings.pod.securityContext) && has(object.spec.runtimeSettings.pod.securityContext.runAsNonRoot) && object.spec.runtimeSettings.pod.securityContext.runAsNonRoot == false",
		"spec.volumes[*].hostPath":                                        "has(object.spec) && has(object.spec.volumes) && object.spec.volumes.exists(x0, has(x0.hostPath))",
		"spec.ports[*].hostPort":                                          "has(object.spec) && has(object.spec.ports) && object.spec.ports.exists(x0, has(x0.hostPort) && x0.hostPort > 0)",
		"spec.runtimeSettings.container.securityContext.capabilities.add": "has(object.spec) && has(object.spec.runtimeSettings) && has(object.spec.runtimeSettings.container) && has(object.spec.runtimeSettings.container.securityContext) && has(object.spec.runtimeSettings.container.securityContext.capabilities) && has(object.spec.runtimeSettings.container.securityContext.capabilities.add) && size(object.spec.runtimeSettings.container.securityContext.capabilities.add) > 0",
	}
	seen := 0
	for _, r := range Rules {
		want, ok := cases[r.Field()]
		if !ok || (r.Resource != BackupConfigurations && r.Resource != Tasks && r.Resource != Functions) {
			continue
		}
		seen++
		if got := r.CEL(); got != want {
			t.Errorf("%s %s:\n got %s\nwant %s", r.Resource, r.Field(), got, want)
		}
	}
	if seen != len(cases) {
		t.Errorf("checked %d of %d cases", seen, len(cases))
	}
}

// The built-in catalog asks for nothing: it is usable from every namespace
// and needs no admission check.
func TestBuiltinsAskNothing(t *testing.T) {
	for _, f := range builtin.Functions("img") {
		if asks, err := Asks(Functions, f); err != nil || len(asks) > 0 {
			t.Errorf("built-in Function %s asks %v (%v)", f.Name, fields(asks), err)
		}
	}
	for _, task := range builtin.Tasks() {
		if asks, err := Asks(Tasks, task); err != nil || len(asks) > 0 {
			t.Errorf("built-in Task %s asks %v (%v)", task.Name, fields(asks), err)
		}
	}
}

// Asks reads only the spec: every rule must be under it, and a typed
// object, a map and an unstructured object ask the same.
func TestAsksReadOnlyTheSpec(t *testing.T) {
	for _, r := range Rules {
		if !strings.HasPrefix(r.Path, "spec.") {
			t.Errorf("rule %s of %s is not under spec: Asks would miss it", r.Path, r.Resource)
		}
	}
	repo := &v1beta1.Repository{
		Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{Local: &v1beta1.LocalSpec{
			MountPath: "/repo", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib"}}}}},
		Status: v1beta1.RepositoryStatus{References: []v1beta1.InvokerReference{{Kind: "BackupConfiguration", Name: "a"}}},
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(repo)
	if err != nil {
		t.Fatal(err)
	}
	for name, obj := range map[string]any{"typed": repo, "value": *repo, "map": u, "unstructured": &unstructured.Unstructured{Object: u}} {
		if asks, err := Asks(Repositories, obj); err != nil || len(asks) != 1 || asks[0].Class != HostVolume {
			t.Errorf("%s: asks %v (%v), want the hostPath", name, fields(asks), err)
		}
	}
}

// A Secret or ConfigMap named in env, envFrom, an image pull secret or a
// volume is an ask (the Job's pod reads it with the operator's rights), and
// the ask names the object. Before, a writer who may not get Secret db-admin
// had the Job carry it as REST_SERVER_PASSWORD to a REST server of theirs.
func TestReferencesAreAsks(t *testing.T) {
	secretRef := func(name string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: "password"}}
	}
	bc := &v1beta1.BackupConfiguration{Spec: v1beta1.BackupConfigurationSpec{RuntimeSettings: v1beta1.RuntimeSettings{
		Container: &v1beta1.ContainerRuntimeSettings{
			Env: []corev1.EnvVar{{Name: "REST_SERVER_USERNAME", Value: "x"}, {Name: "REST_SERVER_PASSWORD", ValueFrom: secretRef("db-admin")},
				{Name: "OTHER", ValueFrom: secretRef("db-admin")}, {Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
			EnvFrom: []corev1.EnvFromSource{{Prefix: "APP_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}},
		},
	}}}
	asks, err := Asks(BackupConfigurations, bc)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range asks {
		got = append(got, a.String())
	}
	want := []string{
		"spec.runtimeSettings.container.env[*].valueFrom.secretKeyRef asks for a Secret's value in an environment variable (Secret db-admin) (secrets)",
		"spec.runtimeSettings.container.envFrom[*].configMapRef asks for a ConfigMap's values as environment variables (ConfigMap settings) (configmaps)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("asks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if c := ClassesOf(asks); len(c) != 2 || c[0] != ConfigMaps || c[1] != Secrets {
		t.Errorf("classes %v", c)
	}

	repo := &v1beta1.Repository{Spec: v1beta1.RepositorySpec{Backend: v1beta1.Backend{Local: &v1beta1.LocalSpec{
		MountPath: "/repo", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db-admin"}}}}}}
	if asks, _ := Asks(Repositories, repo); len(asks) != 1 || asks[0].Class != Secrets || asks[0].Names[0] != "db-admin" {
		t.Errorf("secret volume repository: %v", fields(asks))
	}
	task := &v1beta1.Task{Spec: v1beta1.TaskSpec{Volumes: []corev1.Volume{{Name: "p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "t"}}, {ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "a"}}}}}}}}}}
	if got := strings.Join(fields(mustAsks(t, Tasks, task)), ","); got != "spec.volumes[*].projected.sources[*].serviceAccountToken,spec.volumes[*].projected.sources[*].configMap" {
		t.Errorf("projected task volume: %s", got)
	}
	rs := &v1beta1.RestoreSession{Spec: v1beta1.RestoreSessionSpec{RuntimeSettings: v1beta1.RuntimeSettings{
		Pod: &v1beta1.PodRuntimeSettings{ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}}}}}}
	if asks := mustAsks(t, RestoreSessions, rs); len(asks) != 1 || asks[0].Field() != "spec.runtimeSettings.pod.imagePullSecrets[*]" || asks[0].Names[0] != "regcred" {
		t.Errorf("image pull secret: %v", fields(asks))
	}
}

func mustAsks(t *testing.T, res string, obj any) []Ask {
	t.Helper()
	asks, err := Asks(res, obj)
	if err != nil {
		t.Fatal(err)
	}
	return asks
}
